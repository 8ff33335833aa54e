//! Statements written once for both databases, run without macros.
//!
//! A [`Statement`] is SQL text and bound values in order; it is replayed into
//! the backend's own `QueryBuilder` when it runs, so placeholders are each
//! dialect's own (`$n` on PostgreSQL, `?` on SQLite) exactly as sqlx writes
//! them. [`Conn`] is a connection (or transaction, or savepoint) of either
//! backend and [`Tx`] a transaction of either: the row writers of each table
//! and the group committer are plain async functions over them, with `?` and
//! `.await` where a reader sees them.

use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Database, Encode, FromRow, Postgres, QueryBuilder, Sqlite, Type};

use crate::error::Error;

/// Most rows per multi-row insert: with at most 11 columns a statement stays
/// far below either database's limit on bound parameters (SQLite: 32,766).
pub(super) const ROWS_PER_STATEMENT: usize = 1_000;

/// A value bound to a statement.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'a> {
    Text(&'a str),
    Int(i64),
    MaybeInt(Option<i64>),
    MaybeReal(Option<f64>),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(v)
    }
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        Value::MaybeInt(v)
    }
}

impl From<Option<f64>> for Value<'_> {
    fn from(v: Option<f64>) -> Self {
        Value::MaybeReal(v)
    }
}

#[derive(Debug)]
enum Part<'a> {
    Sql(&'a str),
    Value(Value<'a>),
}

/// SQL text and the values bound into it, in order.
#[derive(Debug, Default)]
pub(super) struct Statement<'a> {
    parts: Vec<Part<'a>>,
    /// Not kept as a prepared statement on the connection (see [`Statement::unprepared`]).
    unprepared: bool,
}

/// One row's columns, as a table's writer names them: into a multi-row
/// insert's `values` row ([`Row`]) or a `copy` row ([`CopyRows`]), so each
/// table lists its columns once for both.
pub(super) trait Columns<'a> {
    fn text(&mut self, v: &'a str) -> &mut Self;
    fn int(&mut self, v: i64) -> &mut Self;
    fn maybe_int(&mut self, v: Option<i64>) -> &mut Self;
}

/// One row of a multi-row `values` list.
pub(super) struct Row<'s, 'a> {
    statement: &'s mut Statement<'a>,
    first: bool,
}

impl<'a> Row<'_, 'a> {
    /// The next column's value.
    pub(super) fn bind(&mut self, value: impl Into<Value<'a>>) -> &mut Self {
        if !self.first {
            self.statement.push(", ");
        }
        self.first = false;
        self.statement.bind(value);
        self
    }
}

impl<'a> Columns<'a> for Row<'_, 'a> {
    fn text(&mut self, v: &'a str) -> &mut Self {
        self.bind(v)
    }

    fn int(&mut self, v: i64) -> &mut Self {
        self.bind(v)
    }

    fn maybe_int(&mut self, v: Option<i64>) -> &mut Self {
        self.bind(v)
    }
}

impl<'a> Statement<'a> {
    pub(super) fn new(sql: &'a str) -> Self {
        Statement { parts: vec![Part::Sql(sql)], unprepared: false }
    }

    /// Runs without a cached prepared statement, so each run is planned
    /// afresh (for lookups whose best plan changes as tables grow).
    pub(super) fn unprepared(&mut self) -> &mut Self {
        self.unprepared = true;
        self
    }

    pub(super) fn push(&mut self, sql: &'a str) -> &mut Self {
        self.parts.push(Part::Sql(sql));
        self
    }

    pub(super) fn bind(&mut self, value: impl Into<Value<'a>>) -> &mut Self {
        self.parts.push(Part::Value(value.into()));
        self
    }

    /// `values (…), (…)`: one parenthesised row per item, its columns bound by `row`.
    pub(super) fn values<I>(&mut self, items: impl IntoIterator<Item = I>, mut row: impl FnMut(&mut Row<'_, 'a>, I)) {
        self.push(" values ");
        for (n, item) in items.into_iter().enumerate() {
            self.push(if n == 0 { "(" } else { ", (" });
            row(&mut Row { statement: self, first: true }, item);
            self.push(")");
        }
    }

    /// The statement in the backend's own query builder.
    fn replay<DB: Database>(&self) -> QueryBuilder<DB>
    where
        for<'t> &'t str: Encode<'t, DB> + Type<DB>,
        for<'t> i64: Encode<'t, DB> + Type<DB>,
        for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
        for<'t> Option<f64>: Encode<'t, DB> + Type<DB>,
    {
        let mut builder = QueryBuilder::new("");
        for part in &self.parts {
            match part {
                Part::Sql(sql) => {
                    builder.push(sql);
                }
                Part::Value(Value::Text(v)) => {
                    builder.push_bind(*v);
                }
                Part::Value(Value::Int(v)) => {
                    builder.push_bind(*v);
                }
                Part::Value(Value::MaybeInt(v)) => {
                    builder.push_bind(*v);
                }
                Part::Value(Value::MaybeReal(v)) => {
                    builder.push_bind(*v);
                }
            }
        }
        builder
    }
}

/// A connection, transaction or savepoint of either backend, borrowed.
pub(super) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl<'c> From<&'c mut SqliteConnection> for Conn<'c> {
    fn from(c: &'c mut SqliteConnection) -> Self {
        Conn::Sqlite(c)
    }
}

impl<'c> From<&'c mut PgConnection> for Conn<'c> {
    fn from(c: &'c mut PgConnection) -> Self {
        Conn::Postgres(c)
    }
}

impl Conn<'_> {
    /// Runs a statement; returns the rows it affected.
    pub(super) async fn execute(&mut self, statement: &Statement<'_>) -> Result<u64, Error> {
        Ok(match self {
            Conn::Sqlite(c) => {
                let mut query = statement.replay::<Sqlite>();
                query.build().persistent(!statement.unprepared).execute(&mut **c).await?.rows_affected()
            }
            Conn::Postgres(c) => {
                let mut query = statement.replay::<Postgres>();
                query.build().persistent(!statement.unprepared).execute(&mut **c).await?.rows_affected()
            }
        })
    }

    /// Runs a statement and reads every row it returns.
    pub(super) async fn fetch_all<T>(&mut self, statement: &Statement<'_>) -> Result<Vec<T>, Error>
    where
        T: Send + Unpin + for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>,
    {
        Ok(match self {
            Conn::Sqlite(c) => {
                let mut query = statement.replay::<Sqlite>();
                query.build_query_as::<T>().persistent(!statement.unprepared).fetch_all(&mut **c).await?
            }
            Conn::Postgres(c) => {
                let mut query = statement.replay::<Postgres>();
                query.build_query_as::<T>().persistent(!statement.unprepared).fetch_all(&mut **c).await?
            }
        })
    }
}

/// Rows for PostgreSQL's `copy … from stdin`, in its text format: bulk
/// writes with no statement of thousands of parameters to parse and plan.
#[derive(Debug, Default)]
pub(super) struct CopyRows {
    data: Vec<u8>,
    row_open: bool,
}

impl CopyRows {
    fn column(&mut self) {
        if self.row_open {
            self.data.push(b'\t');
        }
        self.row_open = true;
    }

    /// Ends the row begun by the columns since the last call.
    pub(super) fn end_row(&mut self) {
        self.data.push(b'\n');
        self.row_open = false;
    }
}

impl Columns<'_> for CopyRows {
    /// The next column's text, escaped as the format requires.
    fn text(&mut self, v: &str) -> &mut Self {
        self.column();
        for &b in v.as_bytes() {
            match b {
                b'\\' => self.data.extend_from_slice(b"\\\\"),
                b'\t' => self.data.extend_from_slice(b"\\t"),
                b'\n' => self.data.extend_from_slice(b"\\n"),
                b'\r' => self.data.extend_from_slice(b"\\r"),
                _ => self.data.push(b),
            }
        }
        self
    }

    fn int(&mut self, v: i64) -> &mut Self {
        self.column();
        self.data.extend_from_slice(v.to_string().as_bytes());
        self
    }

    fn maybe_int(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.int(v),
            None => {
                self.column();
                self.data.extend_from_slice(b"\\N");
                self
            }
        }
    }
}

/// What a `copy` wrote.
pub(super) enum Copied {
    Written,
    /// A row's unique key was taken (by a concurrent writer): nothing was
    /// written, and the transaction must roll back.
    KeyTaken,
}

impl Conn<'_> {
    /// Whether this is a PostgreSQL connection (which takes `copy`).
    pub(super) fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres(_))
    }

    /// PostgreSQL only: `copy <table> (<columns>) from stdin` with `rows`.
    pub(super) async fn copy_in(&mut self, table_and_columns: &str, rows: &CopyRows) -> Result<Copied, Error> {
        let Conn::Postgres(c) = self else {
            return Err(Error::Internal("copy is PostgreSQL's; SQLite writes with inserts".into()));
        };
        let mut copy = c.copy_in_raw(&format!("copy {table_and_columns} from stdin")).await?;
        copy.send(rows.data.as_slice()).await?;
        match copy.finish().await {
            Ok(_) => Ok(Copied::Written),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Copied::KeyTaken),
            Err(e) => Err(e.into()),
        }
    }
}

/// A transaction (or a savepoint inside one) of either backend.
pub(super) enum Tx<'c> {
    Sqlite(sqlx::Transaction<'c, Sqlite>),
    Postgres(sqlx::Transaction<'c, Postgres>),
}

impl Tx<'_> {
    /// The transaction's connection, for statements and row writers.
    pub(super) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(t) => Conn::Sqlite(t),
            Tx::Postgres(t) => Conn::Postgres(t),
        }
    }

    /// A savepoint: committing it keeps its writes in the transaction,
    /// rolling it back undoes only them.
    pub(super) async fn savepoint(&mut self) -> Result<Tx<'_>, Error> {
        Ok(match self {
            Tx::Sqlite(t) => Tx::Sqlite(sqlx::Acquire::begin(&mut **t).await?),
            Tx::Postgres(t) => Tx::Postgres(sqlx::Acquire::begin(&mut **t).await?),
        })
    }

    pub(super) async fn commit(self) -> Result<(), Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub(super) async fn rollback(self) -> Result<(), Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// The pool writes go through: SQLite's single writer connection, or
/// PostgreSQL's pool.
#[derive(Clone)]
pub(super) enum WritePool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl WritePool {
    pub(super) async fn begin(&self) -> Result<Tx<'static>, Error> {
        Ok(match self {
            WritePool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            WritePool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_lists_replay_with_each_dialects_placeholders() {
        let mut s = Statement::new("insert into t (a, b)");
        s.values([("x", 1_i64), ("y", 2)], |row, (a, b)| {
            row.bind(a).bind(b);
        });
        s.push(" on conflict do nothing");
        assert_eq!(
            s.replay::<Postgres>().sql(),
            "insert into t (a, b) values ($1, $2), ($3, $4) on conflict do nothing"
        );
        assert_eq!(s.replay::<Sqlite>().sql(), "insert into t (a, b) values (?, ?), (?, ?) on conflict do nothing");
    }

    #[test]
    fn copy_rows_escape_what_the_text_format_reserves() {
        let mut rows = CopyRows::default();
        rows.text("tab\there, line\nbreak, back\\slash\r").int(-7).maybe_int(None);
        rows.end_row();
        rows.text("").maybe_int(Some(3));
        rows.end_row();
        assert_eq!(
            String::from_utf8(rows.data).expect("utf-8"),
            "tab\\there, line\\nbreak, back\\\\slash\\r\t-7\t\\N\n\t3\n"
        );
    }
}

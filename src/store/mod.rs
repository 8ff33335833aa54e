//! Persistence. One `Store`, two backends: SQLite (the embedded default) and
//! PostgreSQL (production), chosen once from the URL scheme.
//!
//! Every query is written once: the SQL is plain enough that both dialects agree
//! (`$n` placeholders, `on conflict do nothing`, partial unique indexes), and the
//! Rust around it is written once too, compiled for each backend by the
//! [`with_pools!`] macro, which hands the method body the backend's concrete pool.
//! Where the dialects differ, both versions stand side by side here.
//!
//! SQLite gets a single-connection writer pool (writes are serialised in process,
//! so a transaction never meets `SQLITE_BUSY`) beside a reader pool, in WAL mode
//! with `synchronous = FULL`: an acknowledged write survives a crash or power loss.
//! The writer keeps a larger page cache, its statement journals in memory
//! (`temp_store = memory`: every multi-row insert inside a transaction journals
//! the pages it changes, and on a temporary file that cost a system call per
//! page) and checkpoints less often (see the constants below).

mod audit;
mod candidates;
mod decisions;
pub use candidates::{ERASED_CANDIDATE, SealedSelfIdentification, erased_candidate};
mod events;
mod import;
mod interviews;
mod jobs;
mod rows;
mod rubrics;
mod scorecards;
mod sessions;
mod snapshots;
mod sql;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::domain::{Job, Micros, Rubric};
use crate::error::Error;
pub use audit::{AuditFilter, AuditRow};
pub use events::{EVENT_TYPES, EventRow, NewEvent};
pub use import::{ImportBatch, ImportedScorecard};
pub use scorecards::{
    Amendment, CalibrationRating, CalibrationScorecard, NewScorecard, ScorecardFilter, SubmitOutcome,
};
pub use sessions::SessionRow;
pub use snapshots::SnapshotHeader;
pub use webhooks::{DeliveryAttempt, DeliveryRow, DeliveryState, WebhookRow};

/// Rows of each kind kept in memory by [`ImmutableRows`] (a few KB each at most).
const IMMUTABLE_ROWS: usize = 1_024;

/// Rows that never change once written (rubric revisions, jobs), kept after
/// their first read: exact on every replica, as no replica can change them.
/// Only rows that exist are kept; when full it starts afresh, so it is bounded.
struct ImmutableRows<K, V> {
    rows: std::sync::Mutex<std::collections::HashMap<K, V>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> ImmutableRows<K, V> {
    fn new() -> Self {
        Self { rows: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    fn get(&self, key: &K) -> Option<V> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    fn forget(&self, key: &K) {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    fn keep(&self, key: K, row: &V) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if rows.len() >= IMMUTABLE_ROWS {
            rows.clear();
        }
        rows.insert(key, row.clone());
    }
}

/// How long a request waits for a database connection before `UNAVAILABLE`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// One schema for both databases: every statement in `migrations/` is written
/// in the SQL that SQLite and PostgreSQL share, so the dialects cannot drift.
/// (Checksums and versions are those the two former folders had, so databases
/// migrated before keep their history.)
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!();

enum Backend {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres { pool: PgPool },
}

pub use crate::metrics::PoolStats;

/// Where the database at `url` stands against this binary's migrations,
/// read over one connection that changes nothing: SQLite is opened read-only
/// (never created, its journal mode left as it is). For `scorecard doctor`.
pub async fn schema_state(url: &str) -> Result<SchemaState, Error> {
    use sqlx::Connection;
    const LIST: &str = "select version, success from _sqlx_migrations";
    let applied: Vec<(i64, bool)> = if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Internal(format!("bad SQLite URL: {e}")))?
            .read_only(true)
            .create_if_missing(false);
        let mut c = sqlx::SqliteConnection::connect_with(&options).await?;
        let exists: i64 =
            sqlx::query_scalar("select count(*) from sqlite_master where type = 'table' and name = '_sqlx_migrations'")
                .fetch_one(&mut c)
                .await?;
        let applied = if exists == 0 { Vec::new() } else { sqlx::query_as(LIST).fetch_all(&mut c).await? };
        c.close().await?;
        applied
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| Error::Internal(format!("bad PostgreSQL URL: {e}")))?;
        let mut c = sqlx::PgConnection::connect_with(&options).await?;
        let exists: bool =
            sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null").fetch_one(&mut c).await?;
        let applied = if exists { sqlx::query_as(LIST).fetch_all(&mut c).await? } else { Vec::new() };
        c.close().await?;
        applied
    } else {
        return Err(Error::Internal("the database URL must start with sqlite: or postgres:".into()));
    };
    let known: Vec<(i64, String)> = MIGRATIONS.iter().map(|m| (m.version, m.description.to_string())).collect();
    Ok(SchemaState {
        known: known.len(),
        applied: applied.iter().filter(|(v, ok)| *ok && known.iter().any(|(k, _)| k == v)).count(),
        pending: known
            .iter()
            .filter(|(k, _)| !applied.iter().any(|(v, _)| v == k))
            .map(|(k, d)| format!("{k} {d}"))
            .collect(),
        unknown: applied.iter().filter(|(v, _)| !known.iter().any(|(k, _)| k == v)).map(|(v, _)| *v).collect(),
        failed: applied.iter().filter(|(_, ok)| !ok).map(|(v, _)| *v).collect(),
    })
}

/// A database's migrations against this binary's ([`schema_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaState {
    /// Migrations this binary carries.
    pub known: usize,
    /// Of those, applied successfully.
    pub applied: usize,
    /// Not applied yet (`version description`).
    pub pending: Vec<String>,
    /// Applied by a binary newer than this one.
    pub unknown: Vec<i64>,
    /// Started and not finished.
    pub failed: Vec<i64>,
}

/// The database, whichever it is. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: std::sync::Arc<Backend>,
    /// First submissions waiting for the group committer (`scorecards.rs`).
    submissions: tokio::sync::mpsc::Sender<scorecards::QueuedSubmission>,
    /// Rubric revisions already read, by (organisation, rubric, revision).
    rubric_revisions: std::sync::Arc<ImmutableRows<(String, String, i64), std::sync::Arc<Rubric>>>,
    /// Jobs already read, by (organisation, job): a job is never updated.
    jobs: std::sync::Arc<ImmutableRows<(String, String), Job>>,
    /// Bumped after each local commit that appended events (see `events.rs`).
    event_signal: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

/// Runs `$body` with `$read` and `$write` bound to the backend's pools (the same
/// pool on PostgreSQL). The body is compiled once per backend.
macro_rules! with_pools {
    ($store:expr, |$read:pat_param, $write:pat_param| $body:block) => {
        match &*$store.backend {
            $crate::store::Backend::Sqlite { read, write } => {
                let $read = read;
                let $write = write;
                $body
            }
            $crate::store::Backend::Postgres { pool } => {
                let $read = pool;
                let $write = pool;
                $body
            }
        }
    };
}
pub(crate) use with_pools;

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::Unavailable(format!("database: {e}"))
            }
            other => Error::Internal(format!("database: {other}")),
        }
    }
}

fn corrupt(what: &str, cause: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} cannot be read: {cause}"))
}

/// A page of rows: at most `limit` items after the id `after` ('' = from the
/// start), only those updated after `updated_after` (incremental sync).
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub after: &'a str,
    pub limit: usize,
    pub updated_after: Micros,
}

impl<'a> Page<'a> {
    /// Every row, from `after`.
    pub fn new(after: &'a str, limit: usize) -> Self {
        Self { after, limit, updated_after: Micros::MIN }
    }
}

/// ` limit N` for a page of `rows`: one row more than the page holds, to learn
/// whether a next page exists. The number is written into the statement, not
/// bound: SQLite plans with a bound LIMIT's value and so marks the statement
/// to be prepared afresh whenever that parameter is bound, which is every
/// execution (ListScorecards re-parsed its query on every call: a quarter of
/// the time its reads spent in SQLite, docs/performance.md). A page size is
/// our own integer, never text from a request; each size is a statement of
/// its own in the connection's statement cache.
pub(crate) fn page_limit(rows: usize) -> String {
    format!(" limit {}", rows as u64 + 1)
}

/// Keeps `limit` rows and says whether more exist.
pub fn split_page<T>(mut rows: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}

/// The writer's page cache, in KiB (SQLite's default is 2 MiB). A bulk
/// import's transaction touches some 28 B-tree pages per scorecard; with the
/// default cache they spilled to the WAL mid-transaction and were read back
/// (`pagerStress`, `readDbPage`: a seventh of the import's profile). Pages
/// are allocated as they are used, so an idle server does not hold it.
const SQLITE_WRITER_CACHE: &str = "-65536";
/// Pages of WAL after which a commit checkpoints (SQLite's default is 1,000,
/// 4 MiB). A checkpoint copies each page once however often the WAL holds
/// it; at the default a back-fill checkpointed every few batches and copied
/// the same index pages again each time (a tenth of the import's profile).
/// 10,000 pages is a WAL of at most about 40 MiB between checkpoints.
const SQLITE_WAL_AUTOCHECKPOINT: &str = "10000";

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, Error> {
        Self::connect_with(url, max_connections, ACQUIRE_TIMEOUT).await
    }

    /// [`Store::connect`] with the time a request waits for a free connection
    /// before it is answered `UNAVAILABLE`.
    pub async fn connect_with(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<Self, Error> {
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::Internal(format!("bad SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(ACQUIRE_TIMEOUT);
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(acquire_timeout)
                .connect_with(
                    options
                        .clone()
                        .pragma("cache_size", SQLITE_WRITER_CACHE)
                        .pragma("temp_store", "memory")
                        .pragma("wal_autocheckpoint", SQLITE_WAL_AUTOCHECKPOINT),
                )
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(acquire_timeout)
                .connect_with(options.read_only(true))
                .await?;
            Backend::Sqlite { read, write }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options =
                PgConnectOptions::from_str(url).map_err(|e| Error::Internal(format!("bad PostgreSQL URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await?;
            Backend::Postgres { pool }
        } else {
            return Err(Error::Internal("the database URL must start with sqlite: or postgres:".into()));
        };
        let submissions = scorecards::start_group_commit(&backend);
        Ok(Self {
            backend: std::sync::Arc::new(backend),
            submissions,
            rubric_revisions: std::sync::Arc::new(ImmutableRows::new()),
            jobs: std::sync::Arc::new(ImmutableRows::new()),
            event_signal: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), Error> {
        let result = match &*self.backend {
            Backend::Sqlite { write, .. } => MIGRATIONS.run(write).await,
            Backend::Postgres { pool } => MIGRATIONS.run(pool).await,
        };
        result.map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
        if let Backend::Postgres { pool } = &*self.backend {
            snapshots::store_parts_uncompressed(pool).await?;
        }
        Ok(())
    }

    /// `sqlite` or `postgres`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// How full each connection pool is, for metrics.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        fn stats<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                name,
                size: pool.size(),
                idle: pool.num_idle() as u32,
                max: pool.options().get_max_connections(),
            }
        }
        match &*self.backend {
            Backend::Sqlite { read, write } => vec![stats("sqlite_read", read), stats("sqlite_write", write)],
            Backend::Postgres { pool } => vec![stats("postgres", pool)],
        }
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        match &*self.backend {
            Backend::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres { pool } => pool.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's settings are what the durability promise and the import's
    /// speed rest on: a driver upgrade or a changed option must not drop them
    /// silently.
    #[tokio::test]
    async fn the_sqlite_writer_is_durable_and_tuned_for_bulk_writes() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("pragmas.db").display());
        let store = Store::connect(&url, 2).await?;
        let Backend::Sqlite { write, read } = &*store.backend else { panic!("a SQLite store") };
        async fn pragma(pool: &SqlitePool, query: &'static str) -> Result<String, sqlx::Error> {
            let (value,): (String,) = sqlx::query_as(query).fetch_one(pool).await?;
            Ok(value)
        }
        assert_eq!(pragma(write, "select cast(journal_mode as text) from pragma_journal_mode").await?, "wal");
        assert_eq!(pragma(write, "select cast(synchronous as text) from pragma_synchronous").await?, "2", "FULL");
        assert_eq!(pragma(write, "select cast(cache_size as text) from pragma_cache_size").await?, SQLITE_WRITER_CACHE);
        assert_eq!(pragma(write, "select cast(temp_store as text) from pragma_temp_store").await?, "2", "memory");
        // Not table-valued (setting it is a side effect): read it as a statement.
        let (pages,): (i64,) = sqlx::query_as("pragma wal_autocheckpoint").fetch_one(write).await?;
        assert_eq!(pages.to_string(), SQLITE_WAL_AUTOCHECKPOINT);
        // Readers keep SQLite's defaults: their caches would multiply by the pool.
        assert_eq!(pragma(read, "select cast(cache_size as text) from pragma_cache_size").await?, "-2000");
        store.close().await;
        Ok(())
    }
}

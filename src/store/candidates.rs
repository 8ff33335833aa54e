//! Candidates: created, read, listed, and erased (personal data and evidence
//! text gone, anonymised ratings kept).

use super::events::NewEvent;
use super::events::append_events;
use super::rows::CandidateRow;
use super::sql::{Columns, Conn, Copied, CopyRows, ROWS_PER_STATEMENT, Statement};
use super::{Page, Store, page_limit, split_page, with_pools};
use crate::domain::{Candidate, Micros};
use crate::error::Error;

/// A new candidate's row, in the order of [`CANDIDATE_COLUMNS`].
fn candidate_columns<'r, 'a, C: Columns<'a>>(row: &'r mut C, org: &'a str, c: &'a Candidate) -> &'r mut C {
    row.text(org)
        .text(&c.id)
        .text(&c.external_id)
        .text(&c.display_name)
        .text(&c.email)
        .maybe_int(None)
        .int(c.created_at)
        .int(c.updated_at)
}

const CANDIDATE_COLUMNS: &str =
    "candidates (org_id, id, external_id, display_name, email, erased_at, created_at, updated_at)";

/// The candidates table's one writer (create and import): inserts
/// `candidates` of `org` (not erased), skipping any whose external id is
/// taken; returns how many were inserted.
pub(super) async fn insert_candidates(conn: &mut Conn<'_>, org: &str, candidates: &[Candidate]) -> Result<u64, Error> {
    let mut inserted = 0;
    for chunk in candidates.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Statement::new("insert into ");
        insert.push(CANDIDATE_COLUMNS);
        insert.values(chunk, |row, c| {
            candidate_columns(row, org, c);
        });
        insert.push(" on conflict do nothing");
        inserted += conn.execute(&insert).await?;
    }
    Ok(inserted)
}

/// The same rows written with PostgreSQL's `copy` (bulk import): every one
/// is written, or none if an external id was taken meanwhile.
pub(super) async fn copy_candidates(conn: &mut Conn<'_>, org: &str, candidates: &[Candidate]) -> Result<Copied, Error> {
    let mut rows = CopyRows::default();
    for c in candidates {
        candidate_columns(&mut rows, org, c).end_row();
    }
    conn.copy_in(CANDIDATE_COLUMNS, &rows).await
}

/// How many of `candidates` (distinct ids of `org`) are not erased, locked
/// `for share` on PostgreSQL until the transaction ends: the erasure fence of
/// [`lock_unerased_candidate`] for many candidates at once.
pub(super) async fn lock_unerased_candidates(
    conn: &mut Conn<'_>,
    org: &str,
    candidates: &[&str],
) -> Result<usize, Error> {
    let mut unerased = 0;
    for chunk in candidates.chunks(ROWS_PER_STATEMENT) {
        let mut lock = Statement::new("select id from candidates where org_id = ");
        lock.bind(org).push(" and erased_at is null and id in (");
        for (n, id) in chunk.iter().enumerate() {
            lock.push(if n == 0 { "" } else { ", " }).bind(*id);
        }
        lock.push(")");
        if conn.is_postgres() {
            lock.push(" for share");
        }
        unerased += conn.fetch_all::<(String,)>(&lock).await?.len();
    }
    Ok(unerased)
}

/// Why new free text about an erased candidate is refused.
pub const ERASED_CANDIDATE: &str = "the candidate's personal data was erased";

/// Refused: new free text about a candidate whose personal data was erased.
pub fn erased_candidate() -> Error {
    Error::FailedPrecondition(ERASED_CANDIDATE.into())
}

/// The erasure fence, for a write about one candidate. Inside the caller's
/// write transaction, says whether candidate `id` of `org` is not erased, and
/// keeps it so until the transaction ends; a write that stores free text about
/// a candidate (a scorecard's evidence, summary or reason) stores it only then.
/// On PostgreSQL the row is locked `for share`: an erasure (an update of the
/// row) that committed first is seen, as a locking read re-reads a row it
/// waited for, and one that comes later waits for the write to commit and then
/// blanks what it wrote. SQLite needs no lock: every write transaction goes
/// through its single writer connection, so no erasure can commit while this
/// one is open. (Writes of many scorecards fence inside their insert:
/// `insert_scorecards`.)
pub(super) async fn lock_unerased_candidate(conn: &mut Conn<'_>, org: &str, id: &str) -> Result<bool, Error> {
    let mut lock = Statement::new("select id from candidates where org_id = ");
    lock.bind(org).push(" and id = ").bind(id).push(" and erased_at is null");
    if matches!(conn, Conn::Postgres(_)) {
        lock.push(" for share");
    }
    let rows: Vec<(String,)> = conn.fetch_all(&lock).await?;
    Ok(!rows.is_empty())
}

/// Starts an insert fenced against erasure (the fence inside the statement,
/// as for scorecards): a `with unerased as (…)` clause naming which of
/// the (organisation, candidate) pairs are not erased, locked for share on PostgreSQL so no
/// erasure commits under the insert. The caller goes on with
/// `) insert into … select * from (values …) as v where exists (select 1
/// from unerased u where u.org_id = v.column1 and u.id = v.columnN)`.
pub(super) fn fenced_insert<'a>(
    conn: &Conn<'_>,
    candidates: impl Iterator<Item = (&'a str, &'a str)>,
) -> Statement<'a> {
    let mut insert = Statement::new(
        "with unerased as (select org_id, id from candidates where erased_at is null and (org_id, id) in (values ",
    );
    for (n, (org, candidate)) in candidates.enumerate() {
        insert.push(if n == 0 { "(" } else { ", (" });
        insert.bind(org).push(", ").bind(candidate).push(")");
    }
    insert.push(")");
    if matches!(conn, Conn::Postgres(_)) {
        insert.push(" for share");
    }
    insert
}

/// A candidate's self-identification as stored: sealed, with the key's id.
#[derive(Debug, Clone)]
pub struct SealedSelfIdentification {
    pub candidate_id: String,
    pub key_id: String,
    pub sealed: String,
}

/// The self_identifications table's one writer (the RPC and import): stores
/// each row, replacing an earlier one, if its candidate exists and is not
/// erased (the erasure fence, inside the insert); returns how many were written.
pub(super) async fn upsert_self_identifications(
    conn: &mut Conn<'_>,
    org: &str,
    rows: &[SealedSelfIdentification],
    now: Micros,
) -> Result<u64, Error> {
    let mut written = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut insert = fenced_insert(conn, chunk.iter().map(|r| (org, r.candidate_id.as_str())));
        insert.push(
            ") insert into self_identifications (org_id, candidate_id, key_id, sealed, updated_at)
             select * from (",
        );
        insert.values(chunk, |row, r| {
            row.bind(org).bind(&r.candidate_id).bind(&r.key_id).bind(&r.sealed).bind(now);
        });
        insert.push(
            ") as v where exists (select 1 from unerased u where u.org_id = v.column1 and u.id = v.column2)
             on conflict (org_id, candidate_id)
             do update set key_id = excluded.key_id, sealed = excluded.sealed, updated_at = excluded.updated_at",
        );
        written += conn.execute(&insert).await?;
    }
    Ok(written)
}

/// Raises the organisation's self-identification version: the last statement
/// of every transaction that changes its self-identification rows (last, so
/// that the counter's row lock is held only until the commit).
pub(super) async fn bump_self_identification_version(conn: &mut Conn<'_>, org: &str) -> Result<(), Error> {
    let mut bump = Statement::new("insert into self_identification_versions (org_id, version) values (");
    bump.bind(org).push(", 1) on conflict (org_id) do update set version = self_identification_versions.version + 1");
    conn.execute(&bump).await?;
    Ok(())
}

impl Store {
    /// `AlreadyExists` when the external id is taken.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "create_candidate"))]
    pub async fn create_candidate(&self, org: &str, c: &Candidate) -> Result<(), Error> {
        let inserted = with_pools!(self, |_, write| {
            let mut connection = write.acquire().await?;
            insert_candidates(&mut Conn::from(&mut *connection), org, std::slice::from_ref(c)).await?
        });
        if inserted == 0 {
            return Err(Error::AlreadyExists(format!(
                "a candidate with external_id `{}` already exists",
                c.external_id
            )));
        }
        Ok(())
    }

    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "get_candidate"))]
    pub async fn get_candidate(&self, org: &str, id: &str) -> Result<Option<Candidate>, Error> {
        let row: Option<CandidateRow> = with_pools!(self, |read, _| {
            sqlx::query_as(
                "select id, external_id, display_name, email, erased_at, created_at, updated_at
                 from candidates where org_id = $1 and id = $2",
            )
            .bind(org)
            .bind(id)
            .fetch_optional(read)
            .await?
        });
        Ok(row.map(Candidate::from))
    }

    /// Candidates by id; with `interviewer` set, only those they have an interview with.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_candidates"))]
    pub async fn list_candidates(
        &self,
        org: &str,
        interviewer: &str,
        page: Page<'_>,
    ) -> Result<(Vec<Candidate>, bool), Error> {
        let rows: Vec<CandidateRow> = with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(
                "select c.id, c.external_id, c.display_name, c.email, c.erased_at, c.created_at, c.updated_at
                 from candidates c
                 where c.org_id = ",
            );
            query.push_bind(org).push(" and c.id > ").push_bind(page.after);
            query.push(" and c.updated_at > ").push_bind(page.updated_after);
            if !interviewer.is_empty() {
                query.push(
                    " and exists (select 1 from interviews i
                                  where i.org_id = c.org_id and i.candidate_id = c.id and i.interviewer = ",
                );
                query.push_bind(interviewer).push(")");
            }
            query.push(" order by c.id").push(page_limit(page.limit));
            query.build_query_as().fetch_all(read).await?
        });
        let (rows, more) = split_page(rows, page.limit);
        Ok((rows.into_iter().map(Candidate::from).collect(), more))
    }

    /// Stores a candidate's sealed self-identification, replacing any
    /// earlier one, if the candidate exists and is not erased (the erasure
    /// fence, as for evidence); `NotFound` or `FailedPrecondition` otherwise.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "put_self_identification"))]
    pub async fn put_self_identification(
        &self,
        org: &str,
        candidate: &str,
        key_id: &str,
        sealed: &str,
        now: Micros,
    ) -> Result<(), Error> {
        let row =
            SealedSelfIdentification { candidate_id: candidate.into(), key_id: key_id.into(), sealed: sealed.into() };
        let written = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            let mut conn = Conn::from(&mut *tx);
            let written = upsert_self_identifications(&mut conn, org, std::slice::from_ref(&row), now).await?;
            bump_self_identification_version(&mut conn, org).await?;
            tx.commit().await?;
            written
        });
        if written == 1 {
            return Ok(());
        }
        Err(match self.get_candidate(org, candidate).await? {
            Some(_) => erased_candidate(),
            None => Error::NotFound(format!("candidates/{candidate}")),
        })
    }

    /// The organisation's self-identification version: raised by every change
    /// to its rows (0 before the first).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "self_identification_version"))]
    pub async fn self_identification_version(&self, org: &str) -> Result<i64, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_scalar::<_, i64>("select version from self_identification_versions where org_id = $1")
                .bind(org)
                .fetch_optional(read)
                .await?
                .unwrap_or(0)
        }))
    }

    /// Every sealed self-identification of an organisation:
    /// (candidate id, key id, sealed value).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "self_identifications"))]
    pub async fn self_identifications(&self, org: &str) -> Result<Vec<(String, String, String)>, Error> {
        // One row holding them all: the drivers' cost per row (about 5 µs on
        // SQLite) was most of a compliance report's first read. Candidate ids,
        // key ids and base64 hold no spaces.
        let all: Option<String> = with_pools!(self, |read, _| {
            sqlx::query_scalar(
                "select string_agg(candidate_id || ' ' || key_id || ' ' || sealed, ' ')
                 from self_identifications where org_id = $1",
            )
            .bind(org)
            .fetch_one(read)
            .await?
        });
        let all = all.unwrap_or_default();
        let mut words = all.split(' ').filter(|w| !w.is_empty());
        let mut out = Vec::new();
        while let (Some(candidate), Some(key), Some(sealed)) = (words.next(), words.next(), words.next()) {
            out.push((candidate.to_string(), key.to_string(), sealed.to_string()));
        }
        Ok(out)
    }

    /// Self-identification rows not sealed under key `key_id`:
    /// (organisation, candidate, key id, sealed value).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "self_identifications_not_under"))]
    pub async fn self_identifications_not_under(
        &self,
        key_id: &str,
    ) -> Result<Vec<(String, String, String, String)>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_as(
                "select org_id, candidate_id, key_id, sealed from self_identifications
                 where key_id <> $1 order by org_id, candidate_id",
            )
            .bind(key_id)
            .fetch_all(read)
            .await?
        }))
    }

    /// Replaces one row's sealed value, if it still holds `previous` (a
    /// concurrent SetSelfIdentification or erasure wins). Whether it did.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "reseal_self_identification"))]
    pub async fn reseal_self_identification(
        &self,
        org: &str,
        candidate: &str,
        previous: &str,
        key_id: &str,
        sealed: &str,
    ) -> Result<bool, Error> {
        let changed = with_pools!(self, |_, write| {
            sqlx::query(
                "update self_identifications set key_id = $4, sealed = $5
                 where org_id = $1 and candidate_id = $2 and sealed = $3",
            )
            .bind(org)
            .bind(candidate)
            .bind(previous)
            .bind(key_id)
            .bind(sealed)
            .execute(write)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Erases a candidate's personal data and the free text of every scorecard
    /// and decision about them, with their self-identification, in one
    /// transaction. Scores and outcomes stay. `None` if there is no such candidate.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "erase_candidate"))]
    pub async fn erase_candidate(&self, org: &str, id: &str, now: Micros) -> Result<Option<Candidate>, Error> {
        let erased = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            let found = sqlx::query(
                "update candidates
                 set display_name = '', email = '', external_id = 'erased:' || id,
                     erased_at = coalesce(erased_at, $3), updated_at = $3
                 where org_id = $1 and id = $2",
            )
            .bind(org)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if found > 0 {
                sqlx::query(
                    "update ratings set evidence = '', thin = 0
                     where org_id = $1 and scorecard_id in
                        (select s.id from scorecards s where s.org_id = $1 and s.candidate_id = $2)",
                )
                .bind(org)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "update scorecard_revisions set summary = '', reason = ''
                     where org_id = $1 and scorecard_id in
                        (select s.id from scorecards s where s.org_id = $1 and s.candidate_id = $2)",
                )
                .bind(org)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("update decisions set reason = '' where org_id = $1 and candidate_id = $2")
                    .bind(org)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("delete from self_identifications where org_id = $1 and candidate_id = $2")
                    .bind(org)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let events = [NewEvent::new(
                    "candidate.erased",
                    format!("candidates/{id}"),
                    serde_json::json!({ "candidate": format!("candidates/{id}") }),
                )];
                let mut conn = Conn::from(&mut *tx);
                append_events(&mut conn, org, &events, now).await?;
                bump_self_identification_version(&mut conn, org).await?;
                // The calibration snapshot holds the candidate's ratings as
                // they stood before: it goes with the erasure.
                super::snapshots::delete_snapshot(&mut conn, org).await?;
                tx.commit().await?;
            }
            found > 0
        });
        if erased {
            self.events_committed();
            self.get_candidate(org, id).await
        } else {
            Ok(None)
        }
    }
}

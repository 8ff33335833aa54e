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

mod audit;
mod events;
mod import;
mod rows;
mod scorecards;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::domain::{Candidate, Interview, Job, Micros, Rubric, RubricContent};
use crate::error::Error;
pub use audit::AuditRow;
pub(crate) use events::append_events;
pub use events::{EVENT_TYPES, EventRow, NewEvent};
pub use import::{ImportBatch, ImportedScorecard};
use rows::{CandidateRow, InterviewRow, JobRow, RubricRow};
pub use scorecards::{CalibrationRow, NewScorecard, ScorecardFilter, SubmitOutcome};
pub use webhooks::{DeliveryRow, DeliveryState, WebhookRow};

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

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

enum Backend {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres { pool: PgPool },
}

/// One connection pool's use at a moment.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub name: &'static str,
    /// Connections open (idle and in use).
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The database, whichever it is. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: std::sync::Arc<Backend>,
    /// First submissions waiting for the group committer (`scorecards.rs`).
    submissions: tokio::sync::mpsc::Sender<scorecards::QueuedSubmission>,
    /// Rubric revisions already read, by (organisation, rubric, revision).
    rubric_revisions: std::sync::Arc<ImmutableRows<(String, String, i64), Rubric>>,
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

/// An interview with the id of its scorecard, if submitted; the caller adds the
/// `where` clause.
macro_rules! select_interview {
    () => {
        select_interview!("")
    };
    ($more_columns:literal) => {
        concat!(
            "select i.id, i.job_id, i.candidate_id, i.interviewer, i.focus_competencies, i.scheduled_at,
                s.id as scorecard_id, i.external_id, i.created_at,
                case when s.submitted_at > i.updated_at then s.submitted_at else i.updated_at end as updated_at",
            $more_columns,
            " from interviews i
         left join scorecards s on s.org_id = i.org_id and s.interview_id = i.id "
        )
    };
}

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

#[derive(sqlx::FromRow)]
struct OverdueRow {
    org_id: String,
    id: String,
    job_id: String,
    candidate_id: String,
    interviewer: String,
    scheduled_at: i64,
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

    /// One more than asked for, to learn whether a next page exists.
    fn fetch_limit(&self) -> i64 {
        self.limit as i64 + 1
    }
}

/// Keeps `limit` rows and says whether more exist.
pub fn split_page<T>(mut rows: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}

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
                .connect_with(options.clone())
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

    /// Applies pending migrations of the backend's dialect.
    pub async fn migrate(&self) -> Result<(), Error> {
        let result = match &*self.backend {
            Backend::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await,
            Backend::Postgres { pool } => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|e| Error::Internal(format!("migration failed: {e}")))
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

    // ---- rubrics ----

    pub async fn create_rubric(
        &self,
        org: &str,
        id: &str,
        content: &RubricContent,
        now: Micros,
    ) -> Result<Rubric, Error> {
        let json = serde_json::to_string(content).map_err(|e| Error::Internal(e.to_string()))?;
        with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            sqlx::query(
                "insert into rubrics (org_id, id, latest_revision, created_at, updated_at) values ($1, $2, 1, $3, $3)",
            )
            .bind(org)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "insert into rubric_revisions (org_id, rubric_id, revision, content, created_at) values ($1, $2, 1, $3, $4)",
            )
            .bind(org)
            .bind(id)
            .bind(&json)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(Rubric { id: id.to_string(), revision: 1, content: content.clone(), created_at: now, updated_at: now })
    }

    /// A rubric at `revision`, or at its latest revision when `revision` is 0.
    pub async fn get_rubric(&self, org: &str, id: &str, revision: i64) -> Result<Option<Rubric>, Error> {
        let key = (org.to_string(), id.to_string(), revision);
        // Revision 0 means "the latest", which moves: only exact revisions are kept.
        if revision > 0
            && let Some(rubric) = self.rubric_revisions.get(&key)
        {
            return Ok(Some(rubric));
        }
        let rubric = self.read_rubric(org, id, revision).await?;
        if let Some(rubric) = &rubric
            && revision > 0
        {
            self.rubric_revisions.keep(key, rubric);
        }
        Ok(rubric)
    }

    async fn read_rubric(&self, org: &str, id: &str, revision: i64) -> Result<Option<Rubric>, Error> {
        let row: Option<RubricRow> = with_pools!(self, |read, _| {
            sqlx::query_as(
                "select r.id, v.revision, v.content, r.created_at, v.created_at as updated_at
                 from rubrics r
                 join rubric_revisions v on v.org_id = r.org_id and v.rubric_id = r.id
                 where r.org_id = $1 and r.id = $2
                   and v.revision = case when $3 = 0 then r.latest_revision else $3 end",
            )
            .bind(org)
            .bind(id)
            .bind(revision)
            .fetch_optional(read)
            .await?
        });
        row.map(Rubric::try_from).transpose()
    }

    /// Rubrics at their latest revision, by id.
    pub async fn list_rubrics(&self, org: &str, page: Page<'_>) -> Result<(Vec<Rubric>, bool), Error> {
        let rows: Vec<RubricRow> = with_pools!(self, |read, _| {
            sqlx::query_as(
                "select r.id, v.revision, v.content, r.created_at, v.created_at as updated_at
                 from rubrics r
                 join rubric_revisions v on v.org_id = r.org_id and v.rubric_id = r.id and v.revision = r.latest_revision
                 where r.org_id = $1 and r.id > $2
                 order by r.id
                 limit $3",
            )
            .bind(org)
            .bind(page.after)
            .bind(page.fetch_limit())
            .fetch_all(read)
            .await?
        });
        let (rows, more) = split_page(rows, page.limit);
        Ok((rows.into_iter().map(Rubric::try_from).collect::<Result<_, _>>()?, more))
    }

    /// Writes revision `expected_revision + 1`. `Aborted` when the latest revision
    /// is no longer `expected_revision`; `NotFound` when the rubric is gone.
    pub async fn revise_rubric(
        &self,
        org: &str,
        id: &str,
        expected_revision: i64,
        content: &RubricContent,
        now: Micros,
    ) -> Result<Rubric, Error> {
        let json = serde_json::to_string(content).map_err(|e| Error::Internal(e.to_string()))?;
        let revision = expected_revision + 1;
        let created_at: Option<i64> = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            // Compare-and-set on the revision number: of two concurrent revisers
            // holding the same etag, exactly one moves it.
            let created_at: Option<i64> = sqlx::query_scalar(
                "update rubrics set latest_revision = $3, updated_at = $4
                 where org_id = $1 and id = $2 and latest_revision = $5
                 returning created_at",
            )
            .bind(org)
            .bind(id)
            .bind(revision)
            .bind(now)
            .bind(expected_revision)
            .fetch_optional(&mut *tx)
            .await?;
            if created_at.is_some() {
                sqlx::query(
                    "insert into rubric_revisions (org_id, rubric_id, revision, content, created_at)
                     values ($1, $2, $3, $4, $5)",
                )
                .bind(org)
                .bind(id)
                .bind(revision)
                .bind(&json)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            created_at
        });
        match created_at {
            Some(created_at) => {
                Ok(Rubric { id: id.to_string(), revision, content: content.clone(), created_at, updated_at: now })
            }
            None => Err(Error::Aborted("the rubric was revised concurrently: read it again and retry".into())),
        }
    }

    // ---- jobs ----

    /// `AlreadyExists` when another job has the same non-empty external id.
    pub async fn create_job(&self, org: &str, job: &Job) -> Result<(), Error> {
        let inserted = with_pools!(self, |_, write| {
            sqlx::query(
                "insert into jobs (org_id, id, title, external_id, rubric_id, rubric_revision, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)
                 on conflict do nothing",
            )
            .bind(org)
            .bind(&job.id)
            .bind(&job.title)
            .bind(&job.external_id)
            .bind(&job.rubric_id)
            .bind(job.rubric_revision)
            .bind(job.created_at)
            .bind(job.updated_at)
            .execute(write)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(Error::AlreadyExists(format!("a job with external_id `{}` already exists", job.external_id)));
        }
        Ok(())
    }

    pub async fn get_job(&self, org: &str, id: &str) -> Result<Option<Job>, Error> {
        let key = (org.to_string(), id.to_string());
        if let Some(job) = self.jobs.get(&key) {
            return Ok(Some(job));
        }
        let row: Option<JobRow> = with_pools!(self, |read, _| {
            sqlx::query_as(
                "select id, title, external_id, rubric_id, rubric_revision, created_at, updated_at
                 from jobs where org_id = $1 and id = $2",
            )
            .bind(org)
            .bind(id)
            .fetch_optional(read)
            .await?
        });
        let job = row.map(Job::from);
        if let Some(job) = &job {
            self.jobs.keep(key, job);
        }
        Ok(job)
    }

    pub async fn list_jobs(&self, org: &str, page: Page<'_>) -> Result<(Vec<Job>, bool), Error> {
        let rows: Vec<JobRow> = with_pools!(self, |read, _| {
            sqlx::query_as(
                "select id, title, external_id, rubric_id, rubric_revision, created_at, updated_at
                 from jobs where org_id = $1 and id > $2 and updated_at > $4 order by id limit $3",
            )
            .bind(org)
            .bind(page.after)
            .bind(page.fetch_limit())
            .bind(page.updated_after)
            .fetch_all(read)
            .await?
        });
        let (rows, more) = split_page(rows, page.limit);
        Ok((rows.into_iter().map(Job::from).collect(), more))
    }

    // ---- candidates ----

    /// `AlreadyExists` when the external id is taken.
    pub async fn create_candidate(&self, org: &str, c: &Candidate) -> Result<(), Error> {
        let inserted = with_pools!(self, |_, write| {
            sqlx::query(
                "insert into candidates (org_id, id, external_id, display_name, email, erased_at, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, null, $6, $7)
                 on conflict do nothing",
            )
            .bind(org)
            .bind(&c.id)
            .bind(&c.external_id)
            .bind(&c.display_name)
            .bind(&c.email)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(write)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(Error::AlreadyExists(format!(
                "a candidate with external_id `{}` already exists",
                c.external_id
            )));
        }
        Ok(())
    }

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
    pub async fn list_candidates(
        &self,
        org: &str,
        interviewer: &str,
        page: Page<'_>,
    ) -> Result<(Vec<Candidate>, bool), Error> {
        let rows: Vec<CandidateRow> = with_pools!(self, |read, _| {
            sqlx::query_as(
                "select c.id, c.external_id, c.display_name, c.email, c.erased_at, c.created_at, c.updated_at
                 from candidates c
                 where c.org_id = $1 and c.id > $2 and c.updated_at > $5
                   and ($3 = '' or exists (
                        select 1 from interviews i
                        where i.org_id = c.org_id and i.candidate_id = c.id and i.interviewer = $3))
                 order by c.id limit $4",
            )
            .bind(org)
            .bind(page.after)
            .bind(interviewer)
            .bind(page.fetch_limit())
            .bind(page.updated_after)
            .fetch_all(read)
            .await?
        });
        let (rows, more) = split_page(rows, page.limit);
        Ok((rows.into_iter().map(Candidate::from).collect(), more))
    }

    /// Erases a candidate's personal data and the free text of every scorecard
    /// about them, in one transaction. Scores stay. `None` if there is no such candidate.
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
                    "update ratings set evidence = ''
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
                let events = [NewEvent::new(
                    "candidate.erased",
                    format!("candidates/{id}"),
                    serde_json::json!({ "candidate": format!("candidates/{id}") }),
                )];
                append_events!(tx, org, &events, now);
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

    // ---- interviews ----

    /// Stores an interview and its `interview.created` event. `AlreadyExists`
    /// when another interview has the same non-empty external id.
    pub async fn create_interview(&self, org: &str, i: &Interview) -> Result<(), Error> {
        let focus = serde_json::to_string(&i.focus_competencies).map_err(|e| Error::Internal(e.to_string()))?;
        let keys = [i.id.as_str(), &i.job_id, &i.candidate_id, &i.interviewer];
        let events = [events::interview_event("interview.created", keys, i.scheduled_at)];
        let inserted = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            let inserted = sqlx::query(
                "insert into interviews
                    (org_id, id, job_id, candidate_id, interviewer, focus_competencies, scheduled_at, created_at,
                     updated_at, external_id)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 on conflict do nothing",
            )
            .bind(org)
            .bind(&i.id)
            .bind(&i.job_id)
            .bind(&i.candidate_id)
            .bind(&i.interviewer)
            .bind(&focus)
            .bind(i.scheduled_at)
            .bind(i.created_at)
            .bind(i.updated_at)
            .bind(&i.external_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if inserted {
                append_events!(tx, org, &events, i.created_at);
                tx.commit().await?;
            }
            inserted
        });
        if !inserted {
            return Err(Error::AlreadyExists(format!(
                "an interview with external_id `{}` already exists",
                i.external_id
            )));
        }
        self.events_committed();
        Ok(())
    }

    pub async fn get_interview(&self, org: &str, id: &str) -> Result<Option<Interview>, Error> {
        let row: Option<InterviewRow> = with_pools!(self, |read, _| {
            sqlx::query_as(concat!(select_interview!(), "where i.org_id = $1 and i.id = $2"))
                .bind(org)
                .bind(id)
                .fetch_optional(read)
                .await?
        });
        row.map(Interview::try_from).transpose()
    }

    /// The interview a submission is for, and whether its candidate's personal
    /// data was erased: what a submission needs to know, in one read.
    pub async fn interview_for_submission(&self, org: &str, id: &str) -> Result<Option<(Interview, bool)>, Error> {
        let row: Option<rows::SubmissionInterviewRow> = with_pools!(self, |read, _| {
            sqlx::query_as(concat!(
                select_interview!(", c.erased_at is not null as candidate_erased"),
                "left join candidates c on c.org_id = i.org_id and c.id = i.candidate_id
                 where i.org_id = $1 and i.id = $2"
            ))
            .bind(org)
            .bind(id)
            .fetch_optional(read)
            .await?
        });
        row.map(|r| Ok((Interview::try_from(r.interview)?, r.candidate_erased))).transpose()
    }

    /// Interviews by id, filtered ('' = any).
    pub async fn list_interviews(
        &self,
        org: &str,
        job: &str,
        candidate: &str,
        interviewer: &str,
        page: Page<'_>,
    ) -> Result<(Vec<Interview>, bool), Error> {
        // Only the conditions in use, so each combination is its own statement
        // whose plan walks an index in id order and stops after the page (one
        // statement with `($3 = '' or i.job_id = $3)` gets a generic plan on
        // PostgreSQL that joins every interview of the organisation per page).
        let rows: Vec<InterviewRow> = with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(concat!(select_interview!(), "where i.org_id = "));
            query.push_bind(org).push(" and i.id > ").push_bind(page.after);
            for (condition, value) in [
                (" and i.job_id = ", job),
                (" and i.candidate_id = ", candidate),
                (" and i.interviewer = ", interviewer),
            ] {
                if !value.is_empty() {
                    query.push(condition).push_bind(value);
                }
            }
            if page.updated_after != Micros::MIN {
                query
                    .push(" and (case when s.submitted_at > i.updated_at then s.submitted_at else i.updated_at end) > ")
                    .push_bind(page.updated_after);
            }
            query.push(" order by i.id limit ").push_bind(page.fetch_limit());
            query.build_query_as().fetch_all(read).await?
        });
        let (rows, more) = split_page(rows, page.limit);
        Ok((rows.into_iter().map(Interview::try_from).collect::<Result<_, _>>()?, more))
    }

    /// Interviews scheduled before `now` with no scorecard, earliest first. The
    /// page cursor is `(scheduled_at, id)` of the last row seen.
    pub async fn list_overdue_interviews(
        &self,
        org: &str,
        job: &str,
        interviewer: &str,
        now: Micros,
        after: (Micros, &str),
        limit: usize,
    ) -> Result<(Vec<Interview>, bool), Error> {
        // Only the filters in use, like `list_interviews`: a generic plan of
        // `($5 = '' or i.job_id = $5)` on PostgreSQL can use no filter's index.
        let rows: Vec<InterviewRow> = with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(concat!(select_interview!(), "where i.org_id = "));
            query.push_bind(org).push(" and s.id is null and i.scheduled_at < ").push_bind(now);
            query.push(" and (i.scheduled_at > ").push_bind(after.0);
            query.push(" or (i.scheduled_at = ").push_bind(after.0).push(" and i.id > ").push_bind(after.1).push("))");
            for (condition, value) in [(" and i.job_id = ", job), (" and i.interviewer = ", interviewer)] {
                if !value.is_empty() {
                    query.push(condition).push_bind(value);
                }
            }
            query.push(" order by i.scheduled_at, i.id limit ").push_bind(limit as i64 + 1);
            query.build_query_as().fetch_all(read).await?
        });
        let (rows, more) = split_page(rows, limit);
        Ok((rows.into_iter().map(Interview::try_from).collect::<Result<_, _>>()?, more))
    }

    /// Raises `interview.overdue`, once per interview, for interviews scheduled
    /// before `now` without a scorecard (every organisation; at most 500 per
    /// call). Interviews whose scorecard came first are marked so that later
    /// scans skip them. Returns how many events were raised.
    pub async fn raise_overdue(&self, now: Micros) -> Result<usize, Error> {
        let raised = with_pools!(self, |_, write| {
            // 0 marks "never overdue": its scorecard is in.
            sqlx::query(
                "update interviews set overdue_at = 0
                 where overdue_at is null and scheduled_at < $1 and exists (
                    select 1 from scorecards s where s.org_id = interviews.org_id and s.interview_id = interviews.id)",
            )
            .bind(now)
            .execute(write)
            .await?;
            let due: Vec<OverdueRow> = sqlx::query_as(
                "select i.org_id, i.id, i.job_id, i.candidate_id, i.interviewer, i.scheduled_at
                 from interviews i
                 where i.overdue_at is null and i.scheduled_at < $1 and not exists (
                    select 1 from scorecards s where s.org_id = i.org_id and s.interview_id = i.id)
                 order by i.scheduled_at limit 500",
            )
            .bind(now)
            .fetch_all(write)
            .await?;
            let mut raised = 0;
            for row in due {
                let mut tx = write.begin().await?;
                // Once per interview, across replicas; not if the scorecard
                // arrived since the select.
                let marked = sqlx::query(
                    "update interviews set overdue_at = $3
                     where org_id = $1 and id = $2 and overdue_at is null and not exists (
                        select 1 from scorecards s where s.org_id = interviews.org_id and s.interview_id = interviews.id)",
                )
                .bind(&row.org_id)
                .bind(&row.id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if marked > 0 {
                    let keys = [row.id.as_str(), &row.job_id, &row.candidate_id, &row.interviewer];
                    let events = [events::interview_event("interview.overdue", keys, row.scheduled_at)];
                    append_events!(tx, &row.org_id, &events, now);
                    tx.commit().await?;
                    raised += 1;
                }
            }
            raised
        });
        if raised > 0 {
            self.events_committed();
        }
        Ok(raised)
    }
}

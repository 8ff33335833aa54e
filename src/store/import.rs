//! Bulk import (ImportScorecards): lookups by external id, many at a time, and
//! one transaction per batch writing every new row with multi-row inserts.

use sqlx::FromRow;

use super::candidates::{
    SealedSelfIdentification, bump_self_identification_version, copy_candidates, insert_candidates,
    upsert_self_identifications,
};
use super::decisions::{decision_event, insert_decisions};
use super::events::{append_events, interview_event, scorecard_event};
use super::interviews::{copy_interviews, insert_interviews};
use super::jobs::insert_jobs;
use super::scorecards::{
    RevisionInsert, ScorecardInsert, copy_revisions, copy_scorecards, insert_scorecards, write_revisions,
};
use super::sql::{Conn, Copied, ROWS_PER_STATEMENT, Statement};
use super::{NewEvent, Store, with_pools};
use crate::domain::{Candidate, Decision, Interview, Job, Micros, ScorecardContent};
use crate::error::Error;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

#[derive(Debug, Clone, FromRow)]
pub struct ExternalJob {
    pub external_id: String,
    pub id: String,
    pub rubric_id: String,
    pub rubric_revision: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ExternalCandidate {
    pub external_id: String,
    pub id: String,
    pub erased_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct ExternalInterview {
    pub external_id: String,
    pub id: String,
    pub job_id: String,
    pub candidate_id: String,
    pub interviewer: String,
    /// JSON array.
    pub focus_competencies: String,
    pub scorecard_id: Option<String>,
    /// When the interview's candidate was erased.
    pub erased_at: Option<i64>,
}

/// A scorecard to import: revision 1 of a new scorecard.
#[derive(Debug, Clone)]
pub struct ImportedScorecard {
    pub id: String,
    pub interview: Interview,
    pub content: ScorecardContent,
    pub submitted_at: Micros,
}

/// Everything new in one batch.
#[derive(Debug, Default)]
pub struct ImportBatch {
    pub jobs: Vec<Job>,
    pub candidates: Vec<Candidate>,
    pub interviews: Vec<Interview>,
    pub scorecards: Vec<ImportedScorecard>,
    pub decisions: Vec<Decision>,
    /// Sealed before they reach the store; a later one for the same
    /// candidate replaces an earlier one.
    pub self_identifications: Vec<SealedSelfIdentification>,
}

impl ImportBatch {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.candidates.is_empty()
            && self.interviews.is_empty()
            && self.scorecards.is_empty()
            && self.decisions.is_empty()
            && self.self_identifications.is_empty()
    }
}

/// Rows of `org` whose external id is one of `ids`: `select` (ending in
/// `where x.org_id = `) with the organisation and `external_id in (…)`
/// appended, many ids a statement.
async fn by_external_id<T>(store: &Store, org: &str, ids: &[String], select: &'static str) -> Result<Vec<T>, Error>
where
    T: Send + Unpin + for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow>,
{
    let mut found: Vec<T> = Vec::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut query = Statement::new(select);
        // `<> ''` lets the planner use the partial unique indexes on
        // external ids, which it cannot infer from bound parameters.
        query.bind(org).push(" and x.external_id <> '' and x.external_id in (");
        for (n, id) in chunk.iter().enumerate() {
            if n > 0 {
                query.push(", ");
            }
            query.bind(id);
        }
        query.push(")");
        // Unprepared: a plan cached while the tables were small (a sequential
        // scan) would stay in use as they grow.
        query.unprepared();
        let rows: Vec<T> = with_pools!(store, |read, _| {
            let mut connection = read.acquire().await?;
            Conn::from(&mut *connection).fetch_all(&query).await?
        });
        found.extend(rows);
    }
    Ok(found)
}

/// A batch's jobs, candidates, interviews, scorecards (with their revision
/// and ratings) and decisions, with multi-row inserts (SQLite); false, with
/// the transaction to roll back, if one was stored by a concurrent request.
async fn insert_rows(
    conn: &mut Conn<'_>,
    org: &str,
    batch: &ImportBatch,
    scorecards: &[ScorecardInsert<'_>],
    revisions: &[RevisionInsert<'_>],
) -> Result<bool, Error> {
    if insert_jobs(conn, org, &batch.jobs).await? != batch.jobs.len() as u64
        || insert_candidates(conn, org, &batch.candidates).await? != batch.candidates.len() as u64
        || insert_interviews(conn, org, &batch.interviews).await? != batch.interviews.len() as u64
        || insert_scorecards(conn, scorecards).await?.len() != scorecards.len()
        || insert_decisions(conn, org, &batch.decisions).await?.len() != batch.decisions.len()
    {
        return Ok(false);
    }
    write_revisions(conn, revisions).await?;
    Ok(true)
}

/// [`insert_rows`] on PostgreSQL: the many rows (candidates, interviews,
/// scorecards, revisions, ratings) with `copy`, the few (jobs, decisions)
/// with inserts.
async fn copy_rows(
    conn: &mut Conn<'_>,
    org: &str,
    batch: &ImportBatch,
    scorecards: &[ScorecardInsert<'_>],
    revisions: &[RevisionInsert<'_>],
) -> Result<bool, Error> {
    let copied = |c: Copied| matches!(c, Copied::Written);
    if insert_jobs(conn, org, &batch.jobs).await? != batch.jobs.len() as u64
        || (!batch.candidates.is_empty() && !copied(copy_candidates(conn, org, &batch.candidates).await?))
        || (!batch.interviews.is_empty() && !copied(copy_interviews(conn, org, &batch.interviews).await?))
        || (!scorecards.is_empty() && !copied(copy_scorecards(conn, org, scorecards).await?))
        || (!revisions.is_empty() && !copied(copy_revisions(conn, revisions).await?))
        || insert_decisions(conn, org, &batch.decisions).await?.len() != batch.decisions.len()
    {
        return Ok(false);
    }
    Ok(true)
}

impl Store {
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "jobs_by_external_id"))]
    pub async fn jobs_by_external_id(&self, org: &str, ids: &[String]) -> Result<Vec<ExternalJob>, Error> {
        by_external_id(
            self,
            org,
            ids,
            "select x.external_id, x.id, x.rubric_id, x.rubric_revision from jobs x where x.org_id = ",
        )
        .await
    }

    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "candidates_by_external_id"))]
    pub async fn candidates_by_external_id(&self, org: &str, ids: &[String]) -> Result<Vec<ExternalCandidate>, Error> {
        by_external_id(self, org, ids, "select x.external_id, x.id, x.erased_at from candidates x where x.org_id = ")
            .await
    }

    /// (external id, id) of the decisions whose external id is one of `ids`.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "decisions_by_external_id"))]
    pub async fn decisions_by_external_id(&self, org: &str, ids: &[String]) -> Result<Vec<(String, String)>, Error> {
        by_external_id(self, org, ids, "select x.external_id, x.id from decisions x where x.org_id = ").await
    }

    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "interviews_by_external_id"))]
    pub async fn interviews_by_external_id(&self, org: &str, ids: &[String]) -> Result<Vec<ExternalInterview>, Error> {
        by_external_id(
            self,
            org,
            ids,
            // Correlated lookups rather than joins: each is one index probe per
            // interview found, whatever the planner thinks of fresh tables.
            "select x.external_id, x.id, x.job_id, x.candidate_id, x.interviewer, x.focus_competencies,
                    (select s.id from scorecards s where s.org_id = x.org_id and s.interview_id = x.id) as scorecard_id,
                    (select c.erased_at from candidates c where c.org_id = x.org_id and c.id = x.candidate_id)
                        as erased_at
             from interviews x
             where x.org_id = ",
        )
        .await
    }

    /// Writes a batch in one transaction, with an `interview.created` or
    /// `scorecard.submitted` event per new interview or scorecard. `Aborted`
    /// (nothing written) if a concurrent writer stored one of the external ids
    /// first: the import is idempotent, so the client retries.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "write_import"))]
    pub async fn write_import(&self, org: &str, batch: &ImportBatch, author: &str, now: Micros) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut events: Vec<NewEvent> = Vec::with_capacity(batch.interviews.len() + batch.scorecards.len());
        for i in &batch.interviews {
            let keys = [i.id.as_str(), &i.job_id, &i.candidate_id, &i.interviewer];
            events.push(interview_event("interview.created", keys, i.scheduled_at));
        }
        for s in &batch.scorecards {
            let i = &s.interview;
            let keys = [i.id.as_str(), &i.job_id, &i.candidate_id, &i.interviewer];
            events.push(scorecard_event("scorecard.submitted", &s.id, keys, 1));
        }
        events.extend(batch.decisions.iter().map(decision_event));
        let revisions: Vec<RevisionInsert<'_>> = batch
            .scorecards
            .iter()
            .map(|s| RevisionInsert {
                org,
                scorecard_id: &s.id,
                revision: 1,
                content: &s.content,
                reason: "",
                author,
                created_at: now,
            })
            .collect();
        let scorecards: Vec<ScorecardInsert<'_>> = batch
            .scorecards
            .iter()
            .map(|s| ScorecardInsert {
                org,
                id: &s.id,
                interview: &s.interview,
                request_id: "",
                request_hash: "",
                submitted_at: s.submitted_at,
                updated_at: now,
            })
            .collect();
        let lost_race = || {
            Error::Aborted(
                "another request stored some of these items first, or erased a candidate; retry the import".into(),
            )
        };
        with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            let mut conn = Conn::from(&mut *tx);
            // Every item is new (looked up before): one that is not was stored
            // by a concurrent request, and the whole batch goes back.
            // A scorecard whose candidate was erased since the lookup is not
            // inserted either (the erasure fence): the retry reports it as erased.
            let written = if conn.is_postgres() {
                copy_rows(&mut conn, org, batch, &scorecards, &revisions).await?
            } else {
                insert_rows(&mut conn, org, batch, &scorecards, &revisions).await?
            };
            if !written {
                return Err(lost_race());
            }
            // One row per candidate per statement: the last of the batch wins.
            let mut latest: Vec<SealedSelfIdentification> = Vec::new();
            for row in batch.self_identifications.iter().rev() {
                if !latest.iter().any(|l| l.candidate_id == row.candidate_id) {
                    latest.push(row.clone());
                }
            }
            if upsert_self_identifications(&mut conn, org, &latest, now).await? != latest.len() as u64 {
                return Err(lost_race());
            }
            append_events(&mut conn, org, &events, now).await?;
            if !latest.is_empty() {
                bump_self_identification_version(&mut conn, org).await?;
            }
            tx.commit().await?;
        });
        if !events.is_empty() {
            self.events_committed();
        }
        Ok(())
    }
}

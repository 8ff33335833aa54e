//! Bulk import (ImportScorecards): lookups by external id, many at a time, and
//! one transaction per batch writing every new row with multi-row inserts.

use sqlx::FromRow;

use super::events::{interview_event, scorecard_event};
use super::{NewEvent, Store, append_events, with_pools};
use crate::domain::{Candidate, Interview, Job, Micros, ScorecardContent};
use crate::error::Error;

/// Rows per multi-row insert: at most 9 parameters a row keeps every
/// statement under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
const ROWS_PER_INSERT: usize = 1_000;

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
}

impl ImportBatch {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.candidates.is_empty() && self.interviews.is_empty() && self.scorecards.is_empty()
    }
}

/// Looks rows up by external id: `$select` with `external_id in (…)` appended.
macro_rules! by_external_id {
    ($store:expr, $org:expr, $ids:expr, $select:expr, $row:ty) => {{
        let mut found: Vec<$row> = Vec::new();
        for chunk in $ids.chunks(ROWS_PER_INSERT) {
            let rows: Vec<$row> = with_pools!($store, |read, _| {
                let mut q = sqlx::QueryBuilder::new($select);
                // `<> ''` lets the planner use the partial unique indexes on
                // external ids, which it cannot infer from bound parameters.
                q.push_bind($org).push(" and x.external_id <> '' and x.external_id in (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                list.push_unseparated(")");
                // Unprepared: a plan cached while the tables were small (a
                // sequential scan) would stay in use as they grow.
                q.build_query_as::<$row>().persistent(false).fetch_all(read).await?
            });
            found.extend(rows);
        }
        found
    }};
}

impl Store {
    pub async fn jobs_by_external_id(&self, org: &str, ids: &[String]) -> Result<Vec<ExternalJob>, Error> {
        Ok(by_external_id!(
            self,
            org,
            ids,
            "select x.external_id, x.id, x.rubric_id, x.rubric_revision from jobs x where x.org_id = ",
            ExternalJob
        ))
    }

    pub async fn candidates_by_external_id(&self, org: &str, ids: &[String]) -> Result<Vec<ExternalCandidate>, Error> {
        Ok(by_external_id!(
            self,
            org,
            ids,
            "select x.external_id, x.id, x.erased_at from candidates x where x.org_id = ",
            ExternalCandidate
        ))
    }

    pub async fn interviews_by_external_id(&self, org: &str, ids: &[String]) -> Result<Vec<ExternalInterview>, Error> {
        Ok(by_external_id!(
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
            ExternalInterview
        ))
    }

    /// Writes a batch in one transaction, with an `interview.created` or
    /// `scorecard.submitted` event per new interview or scorecard. `Aborted`
    /// (nothing written) if a concurrent writer stored one of the external ids
    /// first: the import is idempotent, so the client retries.
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
        let focus: Vec<String> = batch
            .interviews
            .iter()
            .map(|i| serde_json::to_string(&i.focus_competencies).unwrap_or_else(|_| "[]".into()))
            .collect();
        let lost_race = || Error::Aborted("another request stored some of these items first; retry the import".into());
        with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            for chunk in batch.jobs.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into jobs (org_id, id, title, external_id, rubric_id, rubric_revision, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut row, j| {
                    row.push_bind(org)
                        .push_bind(j.id.as_str())
                        .push_bind(j.title.as_str())
                        .push_bind(j.external_id.as_str())
                        .push_bind(j.rubric_id.as_str())
                        .push_bind(j.rubric_revision)
                        .push_bind(j.created_at)
                        .push_bind(j.updated_at);
                });
                q.push(" on conflict do nothing");
                if q.build().execute(&mut *tx).await?.rows_affected() != chunk.len() as u64 {
                    return Err(lost_race());
                }
            }
            for chunk in batch.candidates.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into candidates (org_id, id, external_id, display_name, email, erased_at, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut row, c| {
                    row.push_bind(org)
                        .push_bind(c.id.as_str())
                        .push_bind(c.external_id.as_str())
                        .push_bind(c.display_name.as_str())
                        .push_bind(c.email.as_str())
                        .push_bind(None::<i64>)
                        .push_bind(c.created_at)
                        .push_bind(c.updated_at);
                });
                q.push(" on conflict do nothing");
                if q.build().execute(&mut *tx).await?.rows_affected() != chunk.len() as u64 {
                    return Err(lost_race());
                }
            }
            for (chunk, focus) in batch.interviews.chunks(ROWS_PER_INSERT).zip(focus.chunks(ROWS_PER_INSERT)) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into interviews (org_id, id, job_id, candidate_id, interviewer, focus_competencies,
                        scheduled_at, created_at, updated_at, external_id) ",
                );
                q.push_values(chunk.iter().zip(focus), |mut row, (i, f)| {
                    row.push_bind(org)
                        .push_bind(i.id.as_str())
                        .push_bind(i.job_id.as_str())
                        .push_bind(i.candidate_id.as_str())
                        .push_bind(i.interviewer.as_str())
                        .push_bind(f.as_str())
                        .push_bind(i.scheduled_at)
                        .push_bind(i.created_at)
                        .push_bind(i.updated_at)
                        .push_bind(i.external_id.as_str());
                });
                q.push(" on conflict do nothing");
                if q.build().execute(&mut *tx).await?.rows_affected() != chunk.len() as u64 {
                    return Err(lost_race());
                }
            }
            for chunk in batch.scorecards.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into scorecards (org_id, id, interview_id, job_id, candidate_id, interviewer, revision,
                        request_id, request_hash, submitted_at, updated_at) ",
                );
                q.push_values(chunk, |mut row, s| {
                    row.push_bind(org)
                        .push_bind(s.id.as_str())
                        .push_bind(s.interview.id.as_str())
                        .push_bind(s.interview.job_id.as_str())
                        .push_bind(s.interview.candidate_id.as_str())
                        .push_bind(s.interview.interviewer.as_str())
                        .push_bind(1_i64)
                        .push_bind("")
                        .push_bind("")
                        .push_bind(s.submitted_at)
                        .push_bind(now);
                });
                q.push(" on conflict do nothing");
                if q.build().execute(&mut *tx).await?.rows_affected() != chunk.len() as u64 {
                    return Err(lost_race());
                }
                let mut q = sqlx::QueryBuilder::new(
                    "insert into scorecard_revisions (org_id, scorecard_id, revision, recommendation, summary, reason,
                        author, created_at) ",
                );
                q.push_values(chunk, |mut row, s| {
                    row.push_bind(org)
                        .push_bind(s.id.as_str())
                        .push_bind(1_i64)
                        .push_bind(s.content.recommendation.code())
                        .push_bind(s.content.summary.as_str())
                        .push_bind("")
                        .push_bind(author)
                        .push_bind(now);
                });
                q.build().execute(&mut *tx).await?;
            }
            let ratings: Vec<(&str, usize, &crate::domain::Rating)> = batch
                .scorecards
                .iter()
                .flat_map(|s| s.content.ratings.iter().enumerate().map(|(n, r)| (s.id.as_str(), n, r)))
                .collect();
            for chunk in ratings.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into ratings (org_id, scorecard_id, revision, position, competency, score, evidence) ",
                );
                q.push_values(chunk, |mut row, (id, position, r)| {
                    row.push_bind(org)
                        .push_bind(*id)
                        .push_bind(1_i64)
                        .push_bind(*position as i64)
                        .push_bind(r.competency.as_str())
                        .push_bind(i64::from(r.score))
                        .push_bind(r.evidence.as_str());
                });
                q.build().execute(&mut *tx).await?;
            }
            append_events!(tx, org, &events, now);
            tx.commit().await?;
        });
        if !events.is_empty() {
            self.events_committed();
        }
        Ok(())
    }
}

//! Hiring decisions: recorded one at a time or imported, listed, and read as
//! the latest outcome per (job, candidate) for the adverse-impact report's
//! selection rate. Never an input of calibration.

use sqlx::FromRow;

use super::candidates::{erased_candidate, fenced_insert};
use super::events::append_events;
use super::sql::{Conn, ROWS_PER_STATEMENT};
use super::{NewEvent, Page, Store, corrupt, page_limit, split_page, with_pools};
use crate::domain::{Decision, Micros, Outcome};
use crate::error::Error;

#[derive(FromRow)]
struct DecisionRow {
    id: String,
    job_id: String,
    candidate_id: String,
    outcome: String,
    reason: String,
    decided_by: String,
    decided_at: i64,
    external_id: String,
    created_at: i64,
}

impl TryFrom<DecisionRow> for Decision {
    type Error = Error;
    fn try_from(r: DecisionRow) -> Result<Self, Error> {
        Ok(Decision {
            outcome: Outcome::parse(&r.outcome).ok_or_else(|| corrupt("decision outcome", &r.outcome))?,
            id: r.id,
            job_id: r.job_id,
            candidate_id: r.candidate_id,
            reason: r.reason,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            external_id: r.external_id,
            created_at: r.created_at,
        })
    }
}

/// `decision.recorded` of a decision.
pub(super) fn decision_event(d: &Decision) -> NewEvent {
    NewEvent::new(
        "decision.recorded",
        format!("decisions/{}", d.id),
        serde_json::json!({
            "decision": format!("decisions/{}", d.id),
            "job": format!("jobs/{}", d.job_id),
            "candidate": format!("candidates/{}", d.candidate_id),
            "outcome": d.outcome.as_str(),
        }),
    )
}

/// The decisions table's one writer (record and import): inserts `decisions`
/// of `org` whose candidate is not erased (the erasure fence, inside the
/// insert as for scorecards) and whose external id is free; returns the ids
/// inserted.
pub(super) async fn insert_decisions(
    conn: &mut Conn<'_>,
    org: &str,
    decisions: &[Decision],
) -> Result<Vec<String>, Error> {
    let mut inserted = Vec::with_capacity(decisions.len());
    for chunk in decisions.chunks(ROWS_PER_STATEMENT) {
        let mut insert = fenced_insert(conn, chunk.iter().map(|d| (org, d.candidate_id.as_str())));
        insert.push(
            ") insert into decisions (org_id, id, job_id, candidate_id, outcome, reason, decided_by, decided_at,
                external_id, created_at)
             select * from (",
        );
        insert.values(chunk, |row, d| {
            row.bind(org)
                .bind(&d.id)
                .bind(&d.job_id)
                .bind(&d.candidate_id)
                .bind(d.outcome.as_str())
                .bind(&d.reason)
                .bind(&d.decided_by)
                .bind(d.decided_at)
                .bind(&d.external_id)
                .bind(d.created_at);
        });
        // VALUES columns are named column1, column2, … in both dialects.
        insert.push(
            ") as v where exists (select 1 from unerased u where u.org_id = v.column1 and u.id = v.column4)
             on conflict do nothing returning id",
        );
        inserted.extend(conn.fetch_all::<(String,)>(&insert).await?.into_iter().map(|(id,)| id));
    }
    Ok(inserted)
}

impl Store {
    /// Records one decision with its `decision.recorded` event. `NotFound`
    /// for an unknown job or candidate, `FailedPrecondition` for an erased
    /// candidate, `AlreadyExists` when the external id is taken.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "record_decision"))]
    pub async fn record_decision(&self, org: &str, decision: &Decision) -> Result<(), Error> {
        if self.get_job(org, &decision.job_id).await?.is_none() {
            return Err(Error::NotFound(format!("jobs/{}", decision.job_id)));
        }
        let inserted = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            let mut conn = Conn::from(&mut *tx);
            let inserted = !insert_decisions(&mut conn, org, std::slice::from_ref(decision)).await?.is_empty();
            if inserted {
                append_events(&mut conn, org, &[decision_event(decision)], decision.created_at).await?;
                tx.commit().await?;
            }
            inserted
        });
        if inserted {
            self.events_committed();
            return Ok(());
        }
        // Nothing was written: say why.
        match self.get_candidate(org, &decision.candidate_id).await? {
            None => Err(Error::NotFound(format!("candidates/{}", decision.candidate_id))),
            Some(c) if c.erased_at.is_some() => Err(erased_candidate()),
            Some(_) => Err(Error::AlreadyExists(format!(
                "a decision with external_id `{}` already exists",
                decision.external_id
            ))),
        }
    }

    /// Decisions in the order they were recorded, optionally of one job
    /// and/or one candidate.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_decisions"))]
    pub async fn list_decisions(
        &self,
        org: &str,
        job: &str,
        candidate: &str,
        page: Page<'_>,
    ) -> Result<(Vec<Decision>, bool), Error> {
        // Only the conditions in use (see `list_interviews`).
        let rows: Vec<DecisionRow> = with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(
                "select id, job_id, candidate_id, outcome, reason, decided_by, decided_at, external_id, created_at
                 from decisions where org_id = ",
            );
            query.push_bind(org).push(" and id > ").push_bind(page.after);
            for (condition, value) in [(" and job_id = ", job), (" and candidate_id = ", candidate)] {
                if !value.is_empty() {
                    query.push(condition).push_bind(value);
                }
            }
            query.push(" order by id").push(page_limit(page.limit));
            query.build_query_as().fetch_all(read).await?
        });
        let (rows, more) = split_page(rows, page.limit);
        Ok((rows.into_iter().map(Decision::try_from).collect::<Result<_, _>>()?, more))
    }

    /// The latest decision's outcome per (job, candidate) of `org`: latest by
    /// decision time, ties broken by the later record.
    /// How many decisions the organisation has recorded. Decisions are never
    /// deleted and their outcomes never change (erasure blanks only the
    /// reason), so the count is their version: equal counts, equal outcomes.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "decision_count"))]
    pub async fn decision_count(&self, org: &str) -> Result<i64, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_scalar::<_, i64>("select count(*) from decisions where org_id = $1")
                .bind(org)
                .fetch_one(read)
                .await?
        }))
    }

    /// The latest outcome (by decided_at, then id) of every (job, candidate)
    /// with a decision.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "latest_outcomes"))]
    pub async fn latest_outcomes(&self, org: &str) -> Result<Vec<(String, String, Outcome)>, Error> {
        // One row holding them all: the drivers' cost per row (about 5 µs on
        // SQLite) was most of the work. Ids and outcomes hold no spaces.
        let all: Option<String> = with_pools!(self, |read, _| {
            sqlx::query_scalar(
                "select string_agg(job_id || ' ' || candidate_id || ' ' || outcome || ' ' || decided_at || ' ' || id, ' ')
                 from decisions where org_id = $1",
            )
            .bind(org)
            .fetch_one(read)
            .await?
        });
        let all = all.unwrap_or_default();
        let mut words = all.split(' ').filter(|w| !w.is_empty());
        let mut latest: std::collections::HashMap<(&str, &str), (Micros, &str, Outcome)> =
            std::collections::HashMap::new();
        while let (Some(job), Some(candidate), Some(outcome), Some(at), Some(id)) =
            (words.next(), words.next(), words.next(), words.next(), words.next())
        {
            let outcome = Outcome::parse(outcome).ok_or_else(|| corrupt("decision outcome", outcome))?;
            let at: Micros = at.parse().map_err(|_| corrupt("decision time", at))?;
            let entry = latest.entry((job, candidate)).or_insert((Micros::MIN, "", outcome));
            if (at, id) > (entry.0, entry.1) {
                *entry = (at, id, outcome);
            }
        }
        Ok(latest
            .into_iter()
            .map(|((job, candidate), (_, _, outcome))| (job.to_string(), candidate.to_string(), outcome))
            .collect())
    }
}

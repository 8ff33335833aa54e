//! Interviews: created, read (with their scorecard), listed, and the scan that
//! raises `interview.overdue`.

use super::events::{self, append_events};
use super::rows;
use super::rows::InterviewRow;
use super::sql::{Columns, Conn, Copied, CopyRows, ROWS_PER_STATEMENT, Statement};
use super::{Page, Store, page_limit, split_page, with_pools};
use crate::domain::{Interview, Micros};
use crate::error::Error;

#[derive(sqlx::FromRow)]
pub(super) struct OverdueRow {
    org_id: String,
    id: String,
    job_id: String,
    candidate_id: String,
    interviewer: String,
    scheduled_at: i64,
}

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

/// A new interview's row, in the order of [`INTERVIEW_COLUMNS`]; `focus` is
/// its focus competencies as JSON ([`focus_json`]).
fn interview_columns<'r, 'a, C: Columns<'a>>(
    row: &'r mut C,
    org: &'a str,
    i: &'a Interview,
    focus: &'a str,
) -> &'r mut C {
    row.text(org)
        .text(&i.id)
        .text(&i.job_id)
        .text(&i.candidate_id)
        .text(&i.interviewer)
        .text(focus)
        .int(i.scheduled_at)
        .int(i.created_at)
        .int(i.updated_at)
        .text(&i.external_id)
}

const INTERVIEW_COLUMNS: &str = "interviews (org_id, id, job_id, candidate_id, interviewer, focus_competencies,
    scheduled_at, created_at, updated_at, external_id)";

fn focus_json(i: &Interview) -> Result<String, Error> {
    serde_json::to_string(&i.focus_competencies).map_err(|e| Error::Internal(e.to_string()))
}

/// The interviews table's one writer (create and import): inserts
/// `interviews` of `org`, skipping any whose external id is taken; returns how
/// many were inserted. Their events are the caller's.
pub(super) async fn insert_interviews(conn: &mut Conn<'_>, org: &str, interviews: &[Interview]) -> Result<u64, Error> {
    let mut inserted = 0;
    for chunk in interviews.chunks(ROWS_PER_STATEMENT) {
        let focus = chunk.iter().map(focus_json).collect::<Result<Vec<String>, Error>>()?;
        let mut insert = Statement::new("insert into ");
        insert.push(INTERVIEW_COLUMNS);
        insert.values(chunk.iter().zip(&focus), |row, (i, focus)| {
            interview_columns(row, org, i, focus);
        });
        insert.push(" on conflict do nothing");
        inserted += conn.execute(&insert).await?;
    }
    Ok(inserted)
}

/// The same rows written with PostgreSQL's `copy` (bulk import): every one
/// is written, or none if an external id was taken meanwhile.
pub(super) async fn copy_interviews(conn: &mut Conn<'_>, org: &str, interviews: &[Interview]) -> Result<Copied, Error> {
    let mut rows = CopyRows::default();
    for i in interviews {
        let focus = focus_json(i)?;
        interview_columns(&mut rows, org, i, &focus).end_row();
    }
    conn.copy_in(INTERVIEW_COLUMNS, &rows).await
}

impl Store {
    /// Stores an interview and its `interview.created` event. `AlreadyExists`
    /// when another interview has the same non-empty external id.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "create_interview"))]
    pub async fn create_interview(&self, org: &str, i: &Interview) -> Result<(), Error> {
        let keys = [i.id.as_str(), &i.job_id, &i.candidate_id, &i.interviewer];
        let events = [events::interview_event("interview.created", keys, i.scheduled_at)];
        let inserted = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            let inserted = insert_interviews(&mut Conn::from(&mut *tx), org, std::slice::from_ref(i)).await? > 0;
            if inserted {
                append_events(&mut Conn::from(&mut *tx), org, &events, i.created_at).await?;
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

    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "get_interview"))]
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
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "interview_for_submission"))]
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
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_interviews"))]
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
            query.push(" order by i.id").push(page_limit(page.limit));
            query.build_query_as().fetch_all(read).await?
        });
        let (rows, more) = split_page(rows, page.limit);
        Ok((rows.into_iter().map(Interview::try_from).collect::<Result<_, _>>()?, more))
    }

    /// Interviews scheduled before `now` with no scorecard, earliest first. The
    /// page cursor is `(scheduled_at, id)` of the last row seen.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_overdue_interviews"))]
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
            query.push(" order by i.scheduled_at, i.id").push(page_limit(limit));
            query.build_query_as().fetch_all(read).await?
        });
        let (rows, more) = split_page(rows, limit);
        Ok((rows.into_iter().map(Interview::try_from).collect::<Result<_, _>>()?, more))
    }

    /// Raises `interview.overdue`, once per interview, for interviews scheduled
    /// before `now` without a scorecard (every organisation; at most 500 per
    /// call). Interviews whose scorecard came first are marked so that later
    /// scans skip them. Returns how many events were raised.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "raise_overdue"))]
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
                    append_events(&mut Conn::from(&mut *tx), &row.org_id, &events, now).await?;
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

//! Jobs: created, read, listed, and updated (title and hiring bar). The
//! cache of [`Store::get_job`] serves what never changes (the rubric); what
//! can change is read with [`Store::read_job`].

use super::rows::JobRow;
use super::sql::{Conn, ROWS_PER_STATEMENT, Statement};
use super::{Page, Store, page_limit, split_page, with_pools};
use crate::domain::Job;
use crate::error::Error;

/// The jobs table's one writer (create and import): inserts `jobs` of `org`,
/// skipping any whose external id is taken; returns how many were inserted.
pub(super) async fn insert_jobs(conn: &mut Conn<'_>, org: &str, jobs: &[Job]) -> Result<u64, Error> {
    let mut inserted = 0;
    for chunk in jobs.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Statement::new(
            "insert into jobs (org_id, id, title, external_id, rubric_id, rubric_revision, created_at, updated_at,
                hiring_bar)",
        );
        insert.values(chunk, |row, j| {
            row.bind(org)
                .bind(&j.id)
                .bind(&j.title)
                .bind(&j.external_id)
                .bind(&j.rubric_id)
                .bind(j.rubric_revision)
                .bind(j.created_at)
                .bind(j.updated_at)
                .bind(j.hiring_bar);
        });
        insert.push(" on conflict do nothing");
        inserted += conn.execute(&insert).await?;
    }
    Ok(inserted)
}

impl Store {
    /// `AlreadyExists` when another job has the same non-empty external id.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "create_job"))]
    pub async fn create_job(&self, org: &str, job: &Job) -> Result<(), Error> {
        let inserted = with_pools!(self, |_, write| {
            let mut connection = write.acquire().await?;
            insert_jobs(&mut Conn::from(&mut *connection), org, std::slice::from_ref(job)).await?
        });
        if inserted == 0 {
            return Err(Error::AlreadyExists(format!("a job with external_id `{}` already exists", job.external_id)));
        }
        Ok(())
    }

    /// A job, from the cache when it was read before: its id, rubric and
    /// revision are exact; its title and hiring bar may be older than a change
    /// made through another replica (read those with [`Store::read_job`]).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "get_job"))]
    pub async fn get_job(&self, org: &str, id: &str) -> Result<Option<Job>, Error> {
        let key = (org.to_string(), id.to_string());
        if let Some(job) = self.jobs.get(&key) {
            return Ok(Some(job));
        }
        self.read_job(org, id).await
    }

    /// A job as stored now.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "read_job"))]
    pub async fn read_job(&self, org: &str, id: &str) -> Result<Option<Job>, Error> {
        let key = (org.to_string(), id.to_string());
        let row: Option<JobRow> = with_pools!(self, |read, _| {
            sqlx::query_as(
                "select id, title, external_id, rubric_id, rubric_revision, created_at, updated_at, hiring_bar
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

    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_jobs"))]
    pub async fn list_jobs(&self, org: &str, page: Page<'_>) -> Result<(Vec<Job>, bool), Error> {
        let rows: Vec<JobRow> = with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(
                "select id, title, external_id, rubric_id, rubric_revision, created_at, updated_at, hiring_bar
                 from jobs where org_id = ",
            );
            query.push_bind(org).push(" and id > ").push_bind(page.after);
            query
                .push(" and updated_at > ")
                .push_bind(page.updated_after)
                .push(" order by id")
                .push(page_limit(page.limit));
            query.build_query_as().fetch_all(read).await?
        });
        let (rows, more) = split_page(rows, page.limit);
        Ok((rows.into_iter().map(Job::from).collect(), more))
    }
}

impl Store {
    /// Sets a job's title and hiring bar, with its `job.updated` event, and
    /// returns the job as updated; `None` if there is no such job.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "update_job"))]
    pub async fn update_job(
        &self,
        org: &str,
        id: &str,
        title: &str,
        hiring_bar: Option<f64>,
        now: crate::domain::Micros,
    ) -> Result<Option<Job>, Error> {
        let event = super::NewEvent::new(
            "job.updated",
            format!("jobs/{id}"),
            serde_json::json!({ "job": format!("jobs/{id}"), "hiring_bar": hiring_bar }),
        );
        let updated = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            let n = sqlx::query(
                "update jobs set title = $3, hiring_bar = $4, updated_at = $5 where org_id = $1 and id = $2",
            )
            .bind(org)
            .bind(id)
            .bind(title)
            .bind(hiring_bar)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                super::events::append_events(&mut Conn::from(&mut *tx), org, std::slice::from_ref(&event), now).await?;
                tx.commit().await?;
            }
            n > 0
        });
        if !updated {
            return Ok(None);
        }
        self.events_committed();
        self.jobs.forget(&(org.to_string(), id.to_string()));
        self.read_job(org, id).await
    }
}

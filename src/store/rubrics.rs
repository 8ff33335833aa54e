//! Rubrics: created, read (revisions are immutable and cached), listed, revised.

use std::sync::Arc;

use super::rows::RubricRow;
use super::{Page, Store, page_limit, split_page, with_pools};
use crate::domain::{Micros, Rubric, RubricContent};
use crate::error::Error;

impl Store {
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "create_rubric"))]
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

    /// A rubric at `revision`, or at its latest revision when `revision` is 0
    /// (shared: every submission reads its rubric, and copying one is copying
    /// every competency's anchors).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "get_rubric"))]
    pub async fn get_rubric(&self, org: &str, id: &str, revision: i64) -> Result<Option<Arc<Rubric>>, Error> {
        let key = (org.to_string(), id.to_string(), revision);
        // Revision 0 means "the latest", which moves: only exact revisions are kept.
        if revision > 0
            && let Some(rubric) = self.rubric_revisions.get(&key)
        {
            return Ok(Some(rubric));
        }
        let rubric = self.read_rubric(org, id, revision).await?.map(Arc::new);
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
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_rubrics"))]
    pub async fn list_rubrics(&self, org: &str, page: Page<'_>) -> Result<(Vec<Rubric>, bool), Error> {
        let rows: Vec<RubricRow> = with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(
                "select r.id, v.revision, v.content, r.created_at, v.created_at as updated_at
                 from rubrics r
                 join rubric_revisions v on v.org_id = r.org_id and v.rubric_id = r.id and v.revision = r.latest_revision
                 where r.org_id = ",
            );
            query
                .push_bind(org)
                .push(" and r.id > ")
                .push_bind(page.after)
                .push(" order by r.id")
                .push(page_limit(page.limit));
            query.build_query_as().fetch_all(read).await?
        });
        let (rows, more) = split_page(rows, page.limit);
        Ok((rows.into_iter().map(Rubric::try_from).collect::<Result<_, _>>()?, more))
    }

    /// Writes revision `expected_revision + 1`. `Aborted` when the latest revision
    /// is no longer `expected_revision`; `NotFound` when the rubric is gone.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "revise_rubric"))]
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
}

//! The audit log's table: batched appends, filtered pages newest first.

use sqlx::FromRow;

use super::{Store, page_limit, with_pools};
use crate::domain::Micros;
use crate::error::Error;

/// Filters of `ListAuditEvents` as the store takes them.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: String,
    pub resource: String,
    pub method: String,
    /// '' | 'read' | 'write'
    pub action: String,
    pub start: Micros,
    pub end: Micros,
}

/// Parameters per row of an insert; chunks stay under SQLite's limit.
const ROWS_PER_INSERT: usize = 1_000;

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub org_id: String,
    pub id: String,
    pub actor: String,
    pub roles: String,
    pub method: String,
    pub action: String,
    pub resource: String,
    pub request_id: String,
    pub code: String,
    pub created_at: Micros,
}

impl Store {
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "append_audit"))]
    pub async fn append_audit(&self, rows: &[AuditRow]) -> Result<(), Error> {
        with_pools!(self, |_, write| {
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into audit_events
                        (org_id, id, actor, roles, method, action, resource, request_id, code, created_at) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.org_id.as_str())
                        .push_bind(r.id.as_str())
                        .push_bind(r.actor.as_str())
                        .push_bind(r.roles.as_str())
                        .push_bind(r.method.as_str())
                        .push_bind(r.action.as_str())
                        .push_bind(r.resource.as_str())
                        .push_bind(r.request_id.as_str())
                        .push_bind(r.code.as_str())
                        .push_bind(r.created_at);
                });
                q.build().execute(write).await?;
            }
        });
        Ok(())
    }

    /// Audit rows newest first, before the id `before` ('' = from the newest);
    /// at most `limit + 1`.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_audit"))]
    pub async fn list_audit(
        &self,
        org: &str,
        filter: &AuditFilter,
        before: &str,
        limit: usize,
    ) -> Result<Vec<AuditRow>, Error> {
        // Only the conditions in use: each combination is its own statement,
        // whose plan walks the primary key (or the actor's or resource's index)
        // newest first and stops after the page. One statement with
        // `($3 = '' or actor = $3)` for every filter gets a generic plan on
        // PostgreSQL that reads the organisation's whole log for each page.
        Ok(with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(
                "select org_id, id, actor, roles, method, action, resource, request_id, code, created_at
                 from audit_events where org_id = ",
            );
            query.push_bind(org);
            for (condition, value) in [
                (" and id < ", before),
                (" and actor = ", filter.actor.as_str()),
                (" and resource = ", filter.resource.as_str()),
                (" and method = ", filter.method.as_str()),
                (" and action = ", filter.action.as_str()),
            ] {
                if !value.is_empty() {
                    query.push(condition).push_bind(value);
                }
            }
            if filter.start != Micros::MIN {
                query.push(" and created_at >= ").push_bind(filter.start);
            }
            if filter.end != Micros::MAX {
                query.push(" and created_at < ").push_bind(filter.end);
            }
            query.push(" order by id desc").push(page_limit(limit));
            query.build_query_as().fetch_all(read).await?
        }))
    }
}

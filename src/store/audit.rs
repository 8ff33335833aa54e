//! The audit log's table: batched appends, filtered pages newest first.

use sqlx::FromRow;

use super::{Store, with_pools};
use crate::audit::AuditFilter;
use crate::domain::Micros;
use crate::error::Error;

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
    pub async fn list_audit(
        &self,
        org: &str,
        filter: &AuditFilter,
        before: &str,
        limit: usize,
    ) -> Result<Vec<AuditRow>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_as(
                "select org_id, id, actor, roles, method, action, resource, request_id, code, created_at
                 from audit_events
                 where org_id = $1 and ($2 = '' or id < $2)
                   and ($3 = '' or actor = $3) and ($4 = '' or resource = $4) and ($5 = '' or method = $5)
                   and ($6 = '' or action = $6) and created_at >= $7 and created_at < $8
                 order by id desc limit $9",
            )
            .bind(org)
            .bind(before)
            .bind(&filter.actor)
            .bind(&filter.resource)
            .bind(&filter.method)
            .bind(&filter.action)
            .bind(filter.start)
            .bind(filter.end)
            .bind(limit as i64 + 1)
            .fetch_all(read)
            .await?
        }))
    }
}

//! Report sign-in sessions: stored by the SHA-256 of their random id, with
//! the caller they stand for and when they expire.

use sqlx::FromRow;

use super::{Store, with_pools};
use crate::domain::Micros;
use crate::error::Error;

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    /// Hex SHA-256 of the session id the browser holds.
    pub id_hash: String,
    pub org_id: String,
    pub actor: String,
    /// Comma-separated role names.
    pub roles: String,
    pub created_at: Micros,
    pub expires_at: Micros,
}

impl Store {
    /// Stores a new session, and purges the sessions past their expiry.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "create_session"))]
    pub async fn create_session(&self, row: &SessionRow) -> Result<(), Error> {
        with_pools!(self, |_, write| {
            sqlx::query("delete from web_sessions where expires_at < $1").bind(row.created_at).execute(write).await?;
            sqlx::query(
                "insert into web_sessions (id_hash, org_id, actor, roles, created_at, expires_at)
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&row.id_hash)
            .bind(&row.org_id)
            .bind(&row.actor)
            .bind(&row.roles)
            .bind(row.created_at)
            .bind(row.expires_at)
            .execute(write)
            .await?;
        });
        Ok(())
    }

    /// The live session with this id hash at `now`, if any.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "session"))]
    pub async fn session(&self, id_hash: &str, now: Micros) -> Result<Option<SessionRow>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_as(
                "select id_hash, org_id, actor, roles, created_at, expires_at
                 from web_sessions where id_hash = $1 and expires_at > $2",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(read)
            .await?
        }))
    }

    /// Ends a session (sign-out); a no-op for an unknown one.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "delete_session"))]
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), Error> {
        with_pools!(self, |_, write| {
            sqlx::query("delete from web_sessions where id_hash = $1").bind(id_hash).execute(write).await?;
        });
        Ok(())
    }
}

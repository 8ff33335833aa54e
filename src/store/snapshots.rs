//! Calibration snapshots: an organisation's fitted state, kept so that a
//! restart reads it back instead of every scorecard (the calibrator decides
//! what is in it; here it is bytes). A snapshot is written in parts under a
//! fresh generation and made current by one short transaction at the end, so
//! a reader sees a whole snapshot or none, and a writer that dies half-way
//! leaves parts that the next write clears.

use crate::domain::{Micros, new_id};
use crate::error::Error;

use super::{Store, with_pools};

/// The current snapshot of an organisation.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SnapshotHeader {
    pub generation: String,
    /// Every scorecard change up to this event sequence is in it.
    pub sequence: i64,
    pub format: i32,
    pub parts: i32,
    pub bytes: i64,
    pub created_at: Micros,
}

impl Store {
    /// A generation to write a new snapshot's parts under.
    pub fn new_snapshot_generation(&self) -> String {
        new_id()
    }

    /// Stores part `part` of a snapshot being written (committed on its own:
    /// a large snapshot never holds the writer for long).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "put_snapshot_part"))]
    pub async fn put_snapshot_part(&self, org: &str, generation: &str, part: i32, body: &[u8]) -> Result<(), Error> {
        with_pools!(self, |_, write| {
            sqlx::query(
                "insert into calibration_snapshot_parts (org_id, generation, part, body) values ($1, $2, $3, $4)",
            )
            .bind(org)
            .bind(generation)
            .bind(part)
            .bind(body)
            .execute(write)
            .await?;
        });
        Ok(())
    }

    /// Makes a fully written generation the organisation's snapshot, and
    /// drops the parts of the generations begun before it. Refused (its parts
    /// dropped, and `false`) when a candidate of the organisation was erased
    /// after `header.sequence` (the state it holds predates the erasure), or
    /// when the current snapshot reflects a later sequence. On
    /// PostgreSQL the check and the switch run under the same transaction-level
    /// advisory lock as the erasure's deletion of the snapshot, so an erasure
    /// that commits concurrently is either seen here or deletes what this wrote.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "finish_snapshot"))]
    pub async fn finish_snapshot(&self, org: &str, header: &SnapshotHeader) -> Result<bool, Error> {
        let kept = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            if self.kind() == "postgres" {
                sqlx::query(SNAPSHOT_LOCK).bind(org).execute(&mut *tx).await?;
            }
            let erased: Option<i64> = sqlx::query_scalar(
                "select sequence from events where org_id = $1 and type = 'candidate.erased' and sequence > $2 limit 1",
            )
            .bind(org)
            .bind(header.sequence)
            .fetch_optional(&mut *tx)
            .await?;
            // A snapshot of an earlier sequence (another replica's, written
            // late) never replaces a later one.
            let keep = erased.is_none()
                && sqlx::query(
                    "insert into calibration_snapshots (org_id, generation, sequence, format, parts, bytes, created_at)
                     values ($1, $2, $3, $4, $5, $6, $7)
                     on conflict (org_id) do update set generation = excluded.generation,
                        sequence = excluded.sequence, format = excluded.format, parts = excluded.parts,
                        bytes = excluded.bytes, created_at = excluded.created_at
                     where calibration_snapshots.sequence <= excluded.sequence",
                )
                .bind(org)
                .bind(&header.generation)
                .bind(header.sequence)
                .bind(header.format)
                .bind(header.parts)
                .bind(header.bytes)
                .bind(header.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
            // Generations sort by when they began (UUIDv7): the older ones are
            // replaced or abandoned; a newer one may still be being written.
            let obsolete = if keep {
                "delete from calibration_snapshot_parts where org_id = $1 and generation < $2"
            } else {
                "delete from calibration_snapshot_parts where org_id = $1 and generation = $2"
            };
            sqlx::query(obsolete).bind(org).bind(&header.generation).execute(&mut *tx).await?;
            tx.commit().await?;
            keep
        });
        Ok(kept)
    }

    /// Drops the parts of a generation whose writing failed.
    pub async fn discard_snapshot_parts(&self, org: &str, generation: &str) -> Result<(), Error> {
        with_pools!(self, |_, write| {
            sqlx::query("delete from calibration_snapshot_parts where org_id = $1 and generation = $2")
                .bind(org)
                .bind(generation)
                .execute(write)
                .await?;
        });
        Ok(())
    }

    /// The organisation's snapshot, if one is current and no candidate was
    /// erased after it.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "snapshot_header"))]
    pub async fn snapshot_header(&self, org: &str) -> Result<Option<SnapshotHeader>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_as::<_, SnapshotHeader>(
                "select generation, sequence, format, parts, bytes, created_at from calibration_snapshots s
                 where org_id = $1 and not exists (select 1 from events e where e.org_id = s.org_id
                    and e.type = 'candidate.erased' and e.sequence > s.sequence)",
            )
            .bind(org)
            .fetch_optional(read)
            .await?
        }))
    }

    /// One part of a snapshot (`None` if it is gone: replaced meanwhile).
    pub async fn snapshot_part(&self, org: &str, generation: &str, part: i32) -> Result<Option<Vec<u8>>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_scalar(
                "select body from calibration_snapshot_parts where org_id = $1 and generation = $2 and part = $3",
            )
            .bind(org)
            .bind(generation)
            .bind(part)
            .fetch_optional(read)
            .await?
        }))
    }
}

/// PostgreSQL only, after the migrations (which are written in the SQL both
/// databases share, and this is not): stores snapshot parts out of line
/// without compressing them. They are numbers that pglz barely shrinks, and
/// compressing them cost two thirds of the time a snapshot took to write
/// (600,000 ratings: 1.04 s, 0.36 s without). A no-op once set.
pub(super) async fn store_parts_uncompressed(pool: &sqlx::PgPool) -> Result<(), Error> {
    let storage: Option<String> = sqlx::query_scalar(
        "select attstorage::text from pg_attribute
         where attrelid = 'calibration_snapshot_parts'::regclass and attname = 'body'",
    )
    .fetch_optional(pool)
    .await?;
    if storage.as_deref() != Some("e") {
        sqlx::query("alter table calibration_snapshot_parts alter column body set storage external")
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Serialises a snapshot's switch with an erasure's deletion of it on
/// PostgreSQL (one lock per organisation, released at the transaction's end).
const SNAPSHOT_LOCK: &str = "select pg_advisory_xact_lock(hashtextextended('calibration_snapshot:' || $1, 0))";

/// Inside the caller's transaction: deletes the organisation's snapshot, every
/// generation (an erasure calls this: the state predates it).
pub(super) async fn delete_snapshot(conn: &mut super::sql::Conn<'_>, org: &str) -> Result<(), Error> {
    use super::sql::Statement;
    if matches!(conn, super::sql::Conn::Postgres(_)) {
        // SNAPSHOT_LOCK, built with the statement's own binding.
        let mut lock = Statement::new("select pg_advisory_xact_lock(hashtextextended('calibration_snapshot:' || ");
        lock.bind(org).push(", 0))");
        conn.execute(&lock).await?;
    }
    let mut parts = Statement::new("delete from calibration_snapshot_parts where org_id = ");
    parts.bind(org);
    conn.execute(&parts).await?;
    let mut header = Statement::new("delete from calibration_snapshots where org_id = ");
    header.bind(org);
    conn.execute(&header).await?;
    Ok(())
}

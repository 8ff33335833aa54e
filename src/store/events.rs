//! The event log (transactional outbox). A write that changes state appends its
//! events inside its own transaction with [`append_events`], so an event exists
//! exactly when its change committed. Sequence numbers come from one counter row
//! per organisation; updating it locks the row until commit, so one
//! organisation's events commit in sequence order and a reader never sees a
//! gap fill in behind it.

use serde_json::Value;
use sqlx::FromRow;

use super::sql::{Columns, Conn, CopyRows, ROWS_PER_STATEMENT, Statement};
use super::{Store, page_limit, with_pools};
use crate::domain::Micros;
use crate::error::Error;

/// Every event type, as clients name them.
pub const EVENT_TYPES: [&str; 9] = [
    "scorecard.submitted",
    "scorecard.amended",
    "interview.created",
    "interview.overdue",
    "candidate.erased",
    "ranking.changed",
    "rater.flagged",
    "decision.recorded",
    "job.updated",
];

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: &'static str,
    pub resource: String,
    pub payload: Value,
}

impl NewEvent {
    pub fn new(kind: &'static str, resource: impl Into<String>, payload: Value) -> Self {
        debug_assert!(EVENT_TYPES.contains(&kind), "unknown event type {kind}");
        Self { kind, resource: resource.into(), payload }
    }
}

/// `interview.created` or `interview.overdue` of the interview whose id, job,
/// candidate and interviewer are given.
pub fn interview_event(
    kind: &'static str,
    [interview, job, candidate, interviewer]: [&str; 4],
    scheduled_at: Micros,
) -> NewEvent {
    let scheduled = crate::domain::time::rfc3339(scheduled_at);
    NewEvent::new(
        kind,
        format!("interviews/{interview}"),
        serde_json::json!({
            "interview": format!("interviews/{interview}"),
            "job": format!("jobs/{job}"),
            "candidate": format!("candidates/{candidate}"),
            "interviewer": interviewer,
            "scheduled_time": scheduled,
        }),
    )
}

/// `scorecard.submitted` or `scorecard.amended` of scorecard `scorecard_id`,
/// whose interview, job, candidate and interviewer are given as ids.
pub fn scorecard_event(
    kind: &'static str,
    scorecard_id: &str,
    [interview, job, candidate, interviewer]: [&str; 4],
    revision: i64,
) -> NewEvent {
    NewEvent::new(
        kind,
        format!("scorecards/{scorecard_id}"),
        serde_json::json!({
            "scorecard": format!("scorecards/{scorecard_id}"),
            "interview": format!("interviews/{interview}"),
            "job": format!("jobs/{job}"),
            "candidate": format!("candidates/{candidate}"),
            "interviewer": interviewer,
            "revision": revision,
        }),
    )
}

/// A recorded event.
#[derive(Debug, Clone, FromRow, PartialEq)]
pub struct EventRow {
    pub sequence: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub resource: String,
    pub payload: String,
    pub created_at: Micros,
}

/// From this many events a write appends them with `copy` on PostgreSQL
/// (one round trip more than an insert, much less work per row).
const COPY_EVENTS_FROM: usize = 64;

/// An event's row, in the order of [`EVENT_COLUMNS`].
fn event_columns<'r, 'a, C: Columns<'a>>(
    row: &'r mut C,
    org: &'a str,
    sequence: i64,
    e: &'a NewEvent,
    payload: &'a str,
    now: Micros,
) -> &'r mut C {
    row.text(org).int(sequence).text(e.kind).text(&e.resource).text(payload).int(now)
}

const EVENT_COLUMNS: &str = "events (org_id, sequence, type, resource, payload, created_at)";

/// The events table's one writer: appends `events` for organisation `org`
/// inside the caller's open transaction, numbered after the organisation's
/// last event. Call it last in the transaction: the sequence row stays locked
/// (PostgreSQL) from here to the commit.
pub(super) async fn append_events(
    conn: &mut Conn<'_>,
    org: &str,
    events: &[NewEvent],
    now: Micros,
) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let count = events.len() as i64;
    let mut next = Statement::new("insert into event_sequences (org_id, last_sequence)");
    next.values([()], |row, ()| {
        row.bind(org).bind(count);
    });
    next.push(
        " on conflict (org_id) do update set last_sequence = event_sequences.last_sequence + excluded.last_sequence
         returning last_sequence",
    );
    let last: Vec<(i64,)> = conn.fetch_all(&next).await?;
    let first =
        last.first().map(|(last,)| last - count + 1).ok_or_else(|| Error::Internal("no event sequence".into()))?;
    if conn.is_postgres() && events.len() >= COPY_EVENTS_FROM {
        let mut rows = CopyRows::default();
        for (n, e) in events.iter().enumerate() {
            let payload = e.payload.to_string();
            event_columns(&mut rows, org, first + n as i64, e, &payload, now).end_row();
        }
        // No key to collide on: the sequence numbers were taken above, under
        // the counter row's lock.
        conn.copy_in(EVENT_COLUMNS, &rows).await?;
        return Ok(());
    }
    // Payloads as text first: the statement borrows them.
    let payloads: Vec<String> = events.iter().map(|e| e.payload.to_string()).collect();
    for (chunk_index, chunk) in events.chunks(ROWS_PER_STATEMENT).enumerate() {
        let mut insert = Statement::new("insert into ");
        insert.push(EVENT_COLUMNS);
        insert.values(chunk.iter().enumerate(), |row, (i, e)| {
            let n = chunk_index * ROWS_PER_STATEMENT + i;
            event_columns(row, org, first + n as i64, e, &payloads[n], now);
        });
        conn.execute(&insert).await?;
    }
    Ok(())
}

impl Store {
    /// Events after `after`, oldest first, at most `limit + 1` (to learn whether
    /// more exist). `types` empty means all.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_events"))]
    pub async fn list_events(
        &self,
        org: &str,
        after: i64,
        types: &[String],
        limit: usize,
    ) -> Result<Vec<EventRow>, Error> {
        // The type filter is in SQL (a list of at most seven values), so pages
        // stay full and the limit counts only matching events.
        Ok(with_pools!(self, |read, _| {
            let mut q = sqlx::QueryBuilder::new(
                "select sequence, type, resource, payload, created_at from events where org_id = ",
            );
            q.push_bind(org).push(" and sequence > ").push_bind(after);
            if !types.is_empty() {
                q.push(" and type in (");
                let mut list = q.separated(", ");
                for t in types {
                    list.push_bind(t.as_str());
                }
                list.push_unseparated(")");
            }
            q.push(" order by sequence").push(page_limit(limit));
            q.build_query_as::<EventRow>().fetch_all(read).await?
        }))
    }

    /// The organisation's latest sequence (0 before its first event).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "latest_sequence"))]
    pub async fn latest_sequence(&self, org: &str) -> Result<i64, Error> {
        let last: Option<i64> = with_pools!(self, |read, _| {
            sqlx::query_scalar("select last_sequence from event_sequences where org_id = $1")
                .bind(org)
                .fetch_optional(read)
                .await?
        });
        Ok(last.unwrap_or(0))
    }

    /// Appends events in a transaction of their own: for changes that live in
    /// memory (rankings, rater flags) rather than in a table.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "append_events"))]
    pub async fn append_events(&self, org: &str, events: &[NewEvent], now: Micros) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            append_events(&mut Conn::from(&mut *tx), org, events, now).await?;
            tx.commit().await?;
        });
        self.events_committed();
        Ok(())
    }

    /// Wakes local watchers of the event log; called after every commit that
    /// appended events.
    pub fn events_committed(&self) {
        self.event_signal.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever this process commits events. Events
    /// written by other replicas are found by polling.
    pub fn watch_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.event_signal.subscribe()
    }

    /// What was last published per key (see `published_states`).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "published_states"))]
    pub async fn published_states(&self, org: &str) -> Result<std::collections::HashMap<String, String>, Error> {
        let rows: Vec<(String, String)> = with_pools!(self, |read, _| {
            sqlx::query_as("select key, value from published_states where org_id = $1")
                .bind(org)
                .fetch_all(read)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Records `value` under `key` and appends `event`, if the stored value is
    /// still `prior` (compare-and-set: of replicas publishing the same change,
    /// one raises the event). Returns whether it did.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "publish_state"))]
    pub async fn publish_state(
        &self,
        org: &str,
        key: &str,
        prior: Option<&str>,
        value: &str,
        event: &NewEvent,
        now: Micros,
    ) -> Result<bool, Error> {
        let done = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            let changed = match prior {
                None => sqlx::query(
                    "insert into published_states (org_id, key, value, updated_at) values ($1, $2, $3, $4)
                     on conflict do nothing",
                )
                .bind(org)
                .bind(key)
                .bind(value)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                Some(prior) => sqlx::query(
                    "update published_states set value = $3, updated_at = $4
                     where org_id = $1 and key = $2 and value = $5",
                )
                .bind(org)
                .bind(key)
                .bind(value)
                .bind(now)
                .bind(prior)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            } > 0;
            if changed {
                append_events(&mut Conn::from(&mut *tx), org, std::slice::from_ref(event), now).await?;
                tx.commit().await?;
            }
            changed
        });
        if done {
            self.events_committed();
        }
        Ok(done)
    }
}

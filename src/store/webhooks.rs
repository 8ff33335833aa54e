//! Webhooks and their delivery records. A webhook's `delivered_sequence` is its
//! place in the organisation's event log; a delivery row exists for every event
//! that was attempted (retrying, delivered, dead-lettered or queued again by
//! hand). A lease on the webhook row keeps replicas from delivering for the
//! same webhook at once.

use sqlx::FromRow;

use super::sql::{Conn, Statement};
use super::{Page, Store, page_limit, split_page, with_pools};
use crate::domain::Micros;
use crate::error::Error;

/// Where one event's delivery to one webhook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Retrying,
    Delivered,
    Dead,
    Redeliver,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Redeliver => "redeliver",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Retrying, Self::Delivered, Self::Dead, Self::Redeliver].into_iter().find(|d| d.as_str() == s)
    }
}

/// A webhook with what its API view shows about its deliveries.
#[derive(Debug, Clone, FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    /// JSON array of event types; empty means all.
    pub event_types: String,
    pub secret: String,
    pub delivered_sequence: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    /// Whether a delivery is being retried.
    #[sqlx(default)]
    pub retrying: i64,
    #[sqlx(default)]
    pub dead_letters: i64,
    #[sqlx(default)]
    pub last_error: String,
}

impl WebhookRow {
    pub fn event_types(&self) -> Vec<String> {
        serde_json::from_str(&self.event_types).unwrap_or_default()
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub webhook_id: String,
    pub sequence: i64,
    pub state: String,
    pub attempts: i64,
    pub first_attempt_at: Micros,
    pub next_attempt_at: Micros,
    pub last_error: String,
    pub updated_at: Micros,
}

/// The webhook columns and the delivery summary; the caller adds `where`.
macro_rules! select_webhook {
    () => {
        "select w.id, w.url, w.event_types, w.secret, w.delivered_sequence, w.created_at, w.updated_at,
            (select count(*) from webhook_deliveries d
              where d.org_id = w.org_id and d.webhook_id = w.id and d.state = 'retrying') as retrying,
            (select count(*) from webhook_deliveries d
              where d.org_id = w.org_id and d.webhook_id = w.id and d.state = 'dead') as dead_letters,
            coalesce((select d.last_error from webhook_deliveries d
              where d.org_id = w.org_id and d.webhook_id = w.id and d.last_error <> ''
              order by d.updated_at desc limit 1), '') as last_error
         from webhooks w "
    };
}

/// Moves a webhook's place in the log forward to `to` (never back), inside
/// the caller's transaction.
async fn advance(conn: &mut Conn<'_>, org: &str, webhook: &str, to: i64, now: Micros) -> Result<(), Error> {
    let mut update = Statement::new("update webhooks set delivered_sequence = ");
    update.bind(to).push(", updated_at = ").bind(now);
    update.push(" where org_id = ").bind(org).push(" and id = ").bind(webhook);
    update.push(" and delivered_sequence < ").bind(to);
    conn.execute(&update).await?;
    Ok(())
}

/// Delivery columns; the caller adds `where`.
macro_rules! select_delivery {
    () => {
        "select webhook_id, sequence, state, attempts, first_attempt_at, next_attempt_at, last_error, updated_at
         from webhook_deliveries "
    };
}

/// What an attempt to deliver one event to one webhook came to.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryAttempt<'a> {
    pub org: &'a str,
    pub webhook: &'a str,
    /// The event's sequence number.
    pub sequence: i64,
    pub state: DeliveryState,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub first_attempt_at: Micros,
    /// When to try again (retrying), or when it settled.
    pub next_attempt_at: Micros,
    /// '' when delivered.
    pub last_error: &'a str,
    /// The event is settled: the webhook's place in the log moves to here.
    pub advance_to: Option<i64>,
    pub now: Micros,
}

impl Store {
    /// Registers a webhook whose deliveries start after the organisation's
    /// latest event.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "create_webhook"))]
    pub async fn create_webhook(
        &self,
        org: &str,
        id: &str,
        url: &str,
        event_types: &[String],
        secret: &str,
        now: Micros,
    ) -> Result<(), Error> {
        let types = serde_json::to_string(event_types).map_err(|e| Error::Internal(e.to_string()))?;
        with_pools!(self, |_, write| {
            sqlx::query(
                "insert into webhooks
                    (org_id, id, url, event_types, secret, delivered_sequence, created_at, updated_at, lease_owner,
                     lease_until)
                 values ($1, $2, $3, $4, $5,
                    coalesce((select last_sequence from event_sequences where org_id = $1), 0), $6, $6, '', 0)",
            )
            .bind(org)
            .bind(id)
            .bind(url)
            .bind(&types)
            .bind(secret)
            .bind(now)
            .execute(write)
            .await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "get_webhook"))]
    pub async fn get_webhook(&self, org: &str, id: &str) -> Result<Option<WebhookRow>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_as(concat!(select_webhook!(), "where w.org_id = $1 and w.id = $2"))
                .bind(org)
                .bind(id)
                .fetch_optional(read)
                .await?
        }))
    }

    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_webhooks"))]
    pub async fn list_webhooks(&self, org: &str, page: Page<'_>) -> Result<(Vec<WebhookRow>, bool), Error> {
        let rows: Vec<WebhookRow> = with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(concat!(select_webhook!(), "where w.org_id = "));
            query
                .push_bind(org)
                .push(" and w.id > ")
                .push_bind(page.after)
                .push(" order by w.id")
                .push(page_limit(page.limit));
            query.build_query_as().fetch_all(read).await?
        });
        Ok(split_page(rows, page.limit))
    }

    /// Removes a webhook and its delivery records; false if there was none.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "delete_webhook"))]
    pub async fn delete_webhook(&self, org: &str, id: &str) -> Result<bool, Error> {
        Ok(with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            sqlx::query("delete from webhook_deliveries where org_id = $1 and webhook_id = $2")
                .bind(org)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("delete from webhooks where org_id = $1 and id = $2")
                .bind(org)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            deleted > 0
        }))
    }

    /// Delivery records, newest event first; `before` is the sequence the
    /// previous page ended at (0 for the first page).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_deliveries"))]
    pub async fn list_deliveries(
        &self,
        org: &str,
        webhook: &str,
        state: Option<DeliveryState>,
        before: i64,
        limit: usize,
    ) -> Result<(Vec<DeliveryRow>, bool), Error> {
        let state = state.map(DeliveryState::as_str).unwrap_or("");
        // Only the filters in use: with `($4 = 0 or sequence < $4)` a generic
        // plan on PostgreSQL cannot start its index walk at the cursor, so a
        // deep page read every newer delivery first.
        let rows: Vec<DeliveryRow> = with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(concat!(select_delivery!(), "where org_id = "));
            query.push_bind(org).push(" and webhook_id = ").push_bind(webhook);
            if !state.is_empty() {
                query.push(" and state = ").push_bind(state);
            }
            if before != 0 {
                query.push(" and sequence < ").push_bind(before);
            }
            query.push(" order by sequence desc").push(page_limit(limit));
            query.build_query_as().fetch_all(read).await?
        });
        Ok(split_page(rows, limit))
    }

    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "get_delivery"))]
    pub async fn get_delivery(&self, org: &str, webhook: &str, sequence: i64) -> Result<Option<DeliveryRow>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_as(concat!(select_delivery!(), "where org_id = $1 and webhook_id = $2 and sequence = $3"))
                .bind(org)
                .bind(webhook)
                .bind(sequence)
                .fetch_optional(read)
                .await?
        }))
    }

    /// Queues an event for delivery again, now.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "queue_redelivery"))]
    pub async fn queue_redelivery(&self, org: &str, webhook: &str, sequence: i64, now: Micros) -> Result<(), Error> {
        with_pools!(self, |_, write| {
            sqlx::query(
                "insert into webhook_deliveries
                    (org_id, webhook_id, sequence, state, attempts, first_attempt_at, next_attempt_at, last_error,
                     updated_at)
                 values ($1, $2, $3, 'redeliver', 0, $4, $4, '', $4)
                 on conflict (org_id, webhook_id, sequence)
                 do update set state = 'redeliver', next_attempt_at = $4, updated_at = $4",
            )
            .bind(org)
            .bind(webhook)
            .bind(sequence)
            .bind(now)
            .execute(write)
            .await?;
        });
        Ok(())
    }

    // ---- the dispatcher's side ----

    /// Webhooks (as `(org, id)`) with events after their place in the log or a
    /// redelivery queued, whose lease is free or held by `owner`.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "webhooks_with_work"))]
    pub async fn webhooks_with_work(&self, owner: &str, now: Micros) -> Result<Vec<(String, String)>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_as(
                "select w.org_id, w.id from webhooks w
                 join event_sequences q on q.org_id = w.org_id
                 where (w.lease_until < $2 or w.lease_owner = $1)
                   and (w.delivered_sequence < q.last_sequence or exists (
                        select 1 from webhook_deliveries d
                        where d.org_id = w.org_id and d.webhook_id = w.id and d.state = 'redeliver'))
                 order by w.org_id, w.id",
            )
            .bind(owner)
            .bind(now)
            .fetch_all(read)
            .await?
        }))
    }

    /// Takes or renews the lease on a webhook until `until`; false when another
    /// replica holds it.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "lease_webhook"))]
    pub async fn lease_webhook(
        &self,
        org: &str,
        id: &str,
        owner: &str,
        now: Micros,
        until: Micros,
    ) -> Result<bool, Error> {
        Ok(with_pools!(self, |_, write| {
            sqlx::query(
                "update webhooks set lease_owner = $3, lease_until = $5
                 where org_id = $1 and id = $2 and (lease_until < $4 or lease_owner = $3)",
            )
            .bind(org)
            .bind(id)
            .bind(owner)
            .bind(now)
            .bind(until)
            .execute(write)
            .await?
            .rows_affected()
                > 0
        }))
    }

    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "release_webhook"))]
    pub async fn release_webhook(&self, org: &str, id: &str, owner: &str) -> Result<(), Error> {
        with_pools!(self, |_, write| {
            sqlx::query(
                "update webhooks set lease_until = 0, lease_owner = '' where org_id = $1 and id = $2 and lease_owner = $3",
            )
            .bind(org)
            .bind(id)
            .bind(owner)
            .execute(write)
            .await?;
        });
        Ok(())
    }

    /// Redeliveries queued and due.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "due_redeliveries"))]
    pub async fn due_redeliveries(&self, org: &str, webhook: &str, now: Micros) -> Result<Vec<DeliveryRow>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_as(concat!(
                select_delivery!(),
                "where org_id = $1 and webhook_id = $2 and state = 'redeliver'
                   and next_attempt_at <= $3 order by sequence limit 100"
            ))
            .bind(org)
            .bind(webhook)
            .bind(now)
            .fetch_all(read)
            .await?
        }))
    }

    /// Records an attempt's result. When `advance_to` is set, the webhook's place
    /// in the log moves there in the same transaction (ordered deliveries).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "record_delivery"))]
    pub async fn record_delivery(&self, attempt: &DeliveryAttempt<'_>) -> Result<(), Error> {
        let DeliveryAttempt {
            org,
            webhook,
            sequence,
            state,
            attempts,
            first_attempt_at,
            next_attempt_at,
            last_error,
            advance_to,
            now,
        } = *attempt;
        with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            // A webhook deleted meanwhile has no row to attach the record to.
            let exists: Option<i64> =
                sqlx::query_scalar("select delivered_sequence from webhooks where org_id = $1 and id = $2")
                    .bind(org)
                    .bind(webhook)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_some() {
                sqlx::query(
                    "insert into webhook_deliveries
                        (org_id, webhook_id, sequence, state, attempts, first_attempt_at, next_attempt_at,
                         last_error, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     on conflict (org_id, webhook_id, sequence)
                     do update set state = $4, attempts = $5, first_attempt_at = $6, next_attempt_at = $7,
                                   last_error = $8, updated_at = $9",
                )
                .bind(org)
                .bind(webhook)
                .bind(sequence)
                .bind(state.as_str())
                .bind(attempts)
                .bind(first_attempt_at)
                .bind(next_attempt_at)
                .bind(last_error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if let Some(to) = advance_to {
                    advance(&mut Conn::from(&mut *tx), org, webhook, to, now).await?;
                }
                tx.commit().await?;
            }
        });
        Ok(())
    }

    /// Moves a webhook's place in the log forward to `to` (never back).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "advance_webhook"))]
    pub async fn advance_webhook(&self, org: &str, webhook: &str, to: i64, now: Micros) -> Result<(), Error> {
        with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            advance(&mut Conn::from(&mut *tx), org, webhook, to, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}

//! `EventService` (the event log, paged and streamed) and `WebhookService`
//! (registering endpoints and inspecting their deliveries).

use std::pin::Pin;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::{PageRequest, State};
use crate::auth::{self, Caller};
use crate::domain::names::Collection;
use crate::domain::{Role, new_id, now_micros};
use crate::error::{Error, Violations};
use crate::proto::{self, event_service_server::EventService, webhook_service_server::WebhookService};
use crate::store::{DeliveryRow, DeliveryState, EVENT_TYPES, EventRow, WebhookRow};

const EVENT_READERS: [Role; 3] = [Role::Admin, Role::Integration, Role::Recruiter];
const WEBHOOK_READERS: [Role; 2] = [Role::Admin, Role::Integration];
const WEBHOOK_WRITERS: [Role; 1] = [Role::Admin];

/// Events read per query while a watch catches up.
const WATCH_BATCH: usize = 500;
const MAX_URL: usize = 2_000;

pub struct EventApi {
    state: State,
}

pub struct WebhookApi {
    state: State,
}

/// Checks an event type filter: each a known type, no repeats.
fn event_types(v: &mut Violations, field: &str, types: &[String]) {
    for (n, t) in types.iter().enumerate() {
        if !EVENT_TYPES.contains(&t.as_str()) {
            v.add(format!("{field}[{n}]"), format!("`{t}` is not an event type; known: {}", EVENT_TYPES.join(", ")));
        } else if types[..n].contains(t) {
            v.add(format!("{field}[{n}]"), format!("`{t}` is listed twice"));
        }
    }
}

fn after_sequence(v: &mut Violations, after: i64) {
    if after < 0 {
        v.add("after_sequence", "must not be negative");
    }
}

/// A JSON value as a protobuf `Value`.
fn json_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => {
            Kind::ListValue(prost_types::ListValue { values: items.into_iter().map(json_value).collect() })
        }
        serde_json::Value::Object(map) => Kind::StructValue(json_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn json_struct(map: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct { fields: map.into_iter().map(|(k, v)| (k, json_value(v))).collect() }
}

pub fn event(row: EventRow) -> proto::Event {
    let payload = match serde_json::from_str(&row.payload) {
        Ok(serde_json::Value::Object(map)) => json_struct(map),
        _ => prost_types::Struct::default(),
    };
    proto::Event {
        name: Collection::Events.name(&row.sequence.to_string()),
        sequence: row.sequence,
        r#type: row.kind,
        resource: row.resource,
        time: timestamp(row.created_at),
        payload: Some(payload),
    }
}

impl EventApi {
    pub fn new(state: State) -> Self {
        Self { state }
    }

    async fn list_events(
        &self,
        caller: Caller,
        req: proto::ListEventsRequest,
    ) -> Result<proto::ListEventsResponse, Error> {
        caller.require_any(&EVENT_READERS)?;
        let mut v = Violations::new();
        after_sequence(&mut v, req.after_sequence);
        event_types(&mut v, "event_types", &req.event_types);
        v.into_result()?;
        let start = req.after_sequence.to_string();
        let mut scope = vec!["ListEvents", &start];
        scope.extend(req.event_types.iter().map(String::as_str));
        let page = PageRequest::parse(req.page_size, &req.page_token, &scope)?;
        let after = if page.after.is_empty() {
            req.after_sequence
        } else {
            page.after.parse().map_err(|_| Error::invalid("page_token", "is not a token this list returned"))?
        };
        // Read the latest sequence first: every event up to it is committed, so
        // a poller resuming after it misses nothing.
        let latest = self.state.store.latest_sequence(&caller.org).await?;
        let rows = self.state.store.list_events(&caller.org, after, &req.event_types, page.size).await?;
        let (rows, more) = crate::store::split_page(rows, page.size);
        let next_page_token = page.next_token(more, rows.last().map(|e| e.sequence.to_string()));
        Ok(proto::ListEventsResponse {
            events: rows.into_iter().map(event).collect(),
            next_page_token,
            latest_sequence: latest,
        })
    }
}

#[tonic::async_trait]
impl EventService for EventApi {
    type WatchEventsStream = Pin<Box<dyn Stream<Item = Result<proto::Event, Status>> + Send>>;

    rpc!(list_events, list_events, proto::ListEventsRequest, proto::ListEventsResponse);

    async fn watch_events(
        &self,
        r: Request<proto::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let caller = auth::caller(&r)?;
        caller.require_any(&EVENT_READERS)?;
        let req = r.into_inner();
        let mut v = Violations::new();
        after_sequence(&mut v, req.after_sequence);
        event_types(&mut v, "event_types", &req.event_types);
        v.into_result()?;
        let permit = self.state.streams.open(&caller)?;
        let store = self.state.store.clone();
        // Subscribe before the first read, so no commit falls between them.
        let mut latest = self.state.feeds.subscribe(&caller.org);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<proto::Event, Status>>(WATCH_BATCH);
        tokio::spawn(async move {
            let _permit = permit; // held while the stream is open
            let mut after = req.after_sequence;
            loop {
                // Everything up to `known` has committed: the catch-up below
                // reads all of it that matches the filter.
                let known = *latest.borrow_and_update();
                // Catch up. Events of an organisation commit in sequence order,
                // so everything up to the last one read is final: no gap can
                // open behind `after`.
                loop {
                    let rows = match store.list_events(&caller.org, after, &req.event_types, WATCH_BATCH).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                    };
                    let more = rows.len() > WATCH_BATCH;
                    for row in rows.into_iter().take(WATCH_BATCH) {
                        after = row.sequence;
                        if tx.send(Ok(event(row))).await.is_err() {
                            return; // the client went away
                        }
                    }
                    if !more {
                        break;
                    }
                }
                // Events the filter skipped need not be read again.
                after = after.max(known);
                tokio::select! {
                    changed = latest.wait_for(|l| *l > after) => {
                        if changed.is_err() {
                            return; // the server is stopping
                        }
                    }
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

fn webhook(row: &WebhookRow) -> proto::Webhook {
    let state = if row.retrying > 0 { proto::webhook::State::Retrying } else { proto::webhook::State::Active };
    proto::Webhook {
        name: Collection::Webhooks.name(&row.id),
        url: row.url.clone(),
        event_types: row.event_types(),
        secret: String::new(),
        state: state as i32,
        delivered_sequence: row.delivered_sequence,
        dead_letter_count: row.dead_letters,
        last_error: row.last_error.clone(),
        create_time: timestamp(row.created_at),
    }
}

fn delivery(row: &DeliveryRow) -> proto::Delivery {
    use proto::delivery::State;
    let state = match DeliveryState::parse(&row.state) {
        Some(DeliveryState::Retrying) => State::Retrying,
        Some(DeliveryState::Delivered) => State::Delivered,
        Some(DeliveryState::Dead) => State::DeadLetter,
        Some(DeliveryState::Redeliver) => State::RedeliveryQueued,
        None => State::Unspecified,
    };
    let pending = matches!(state, State::Retrying | State::RedeliveryQueued);
    proto::Delivery {
        webhook: Collection::Webhooks.name(&row.webhook_id),
        event: Collection::Events.name(&row.sequence.to_string()),
        state: state as i32,
        attempts: i32::try_from(row.attempts).unwrap_or(i32::MAX),
        first_attempt_time: if row.attempts > 0 { timestamp(row.first_attempt_at) } else { None },
        next_attempt_time: if pending { timestamp(row.next_attempt_at) } else { None },
        last_error: row.last_error.clone(),
        update_time: timestamp(row.updated_at),
    }
}

/// A generated signing secret: 32 random bytes, URL-safe base64, prefixed so
/// it is recognisable in a secret scanner.
fn generate_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", URL_SAFE_NO_PAD.encode(bytes))
}

impl WebhookApi {
    pub fn new(state: State) -> Self {
        Self { state }
    }

    async fn create(&self, caller: Caller, req: proto::CreateWebhookRequest) -> Result<proto::Webhook, Error> {
        caller.require_any(&WEBHOOK_WRITERS)?;
        let hook = req.webhook.ok_or_else(|| Error::invalid("webhook", "is required"))?;
        let mut v = Violations::new();
        if hook.url.is_empty() {
            v.add("webhook.url", "is required");
        } else if hook.url.chars().count() > MAX_URL {
            v.add("webhook.url", format!("must be at most {MAX_URL} characters"));
        } else if let Err(why) = crate::webhooks::check_url(&hook.url, self.state.webhooks.allow_private).await {
            v.add("webhook.url", why);
        }
        event_types(&mut v, "webhook.event_types", &hook.event_types);
        let secret_chars = hook.secret.chars().count();
        if !hook.secret.is_empty() && !(24..=200).contains(&secret_chars) {
            v.add("webhook.secret", "must be 24..200 characters, or empty to have one generated");
        } else if hook.secret.chars().any(char::is_control) {
            v.add("webhook.secret", "must not contain control characters");
        }
        v.into_result()?;
        let secret = if hook.secret.is_empty() { generate_secret() } else { hook.secret };
        let id = new_id();
        let now = now_micros();
        self.state.store.create_webhook(&caller.org, &id, &hook.url, &hook.event_types, &secret, now).await?;
        let row = self.state.store.get_webhook(&caller.org, &id).await?;
        let row = row.ok_or_else(|| Error::Internal("a created webhook cannot be read back".into()))?;
        tracing::info!(webhook = %id, url = %crate::webhooks::loggable_url(&row.url), "webhook registered");
        // The only time the secret leaves the service.
        Ok(proto::Webhook { secret, ..webhook(&row) })
    }

    async fn get(&self, caller: Caller, req: proto::GetWebhookRequest) -> Result<proto::Webhook, Error> {
        caller.require_any(&WEBHOOK_READERS)?;
        let id = Collection::Webhooks.parse_required(&req.name, "name")?;
        let row = self.state.store.get_webhook(&caller.org, id).await?;
        Ok(webhook(&row.ok_or(Error::NotFound(req.name))?))
    }

    async fn list(
        &self,
        caller: Caller,
        req: proto::ListWebhooksRequest,
    ) -> Result<proto::ListWebhooksResponse, Error> {
        caller.require_any(&WEBHOOK_READERS)?;
        let page = PageRequest::parse(req.page_size, &req.page_token, &["ListWebhooks"])?;
        let (rows, more) = self.state.store.list_webhooks(&caller.org, page.store_page()).await?;
        Ok(proto::ListWebhooksResponse {
            next_page_token: page.next_token(more, rows.last().map(|w| w.id.clone())),
            webhooks: rows.iter().map(webhook).collect(),
        })
    }

    async fn delete(&self, caller: Caller, req: proto::DeleteWebhookRequest) -> Result<(), Error> {
        caller.require_any(&WEBHOOK_WRITERS)?;
        let id = Collection::Webhooks.parse_required(&req.name, "name")?;
        if !self.state.store.delete_webhook(&caller.org, id).await? {
            return Err(Error::NotFound(req.name));
        }
        tracing::info!(webhook = %id, "webhook deleted");
        Ok(())
    }

    async fn deliveries(
        &self,
        caller: Caller,
        req: proto::ListDeliveriesRequest,
    ) -> Result<proto::ListDeliveriesResponse, Error> {
        caller.require_any(&WEBHOOK_READERS)?;
        let mut v = Violations::new();
        let id = Collection::Webhooks.parse_field(&req.webhook, "webhook", &mut v);
        let state = match proto::delivery::State::try_from(req.state) {
            Ok(proto::delivery::State::Unspecified) => None,
            Ok(proto::delivery::State::Retrying) => Some(DeliveryState::Retrying),
            Ok(proto::delivery::State::Delivered) => Some(DeliveryState::Delivered),
            Ok(proto::delivery::State::DeadLetter) => Some(DeliveryState::Dead),
            Ok(proto::delivery::State::RedeliveryQueued) => Some(DeliveryState::Redeliver),
            Err(_) => {
                v.add("state", "is not a delivery state");
                None
            }
        };
        v.into_result()?;
        let id = id.unwrap_or_default();
        if self.state.store.get_webhook(&caller.org, id).await?.is_none() {
            return Err(Error::NotFound(req.webhook));
        }
        let state_name = state.map(DeliveryState::as_str).unwrap_or("");
        let page = PageRequest::parse(req.page_size, &req.page_token, &["ListDeliveries", id, state_name])?;
        let before = if page.after.is_empty() {
            0
        } else {
            page.after.parse().map_err(|_| Error::invalid("page_token", "is not a token this list returned"))?
        };
        let (rows, more) = self.state.store.list_deliveries(&caller.org, id, state, before, page.size).await?;
        Ok(proto::ListDeliveriesResponse {
            next_page_token: page.next_token(more, rows.last().map(|d| d.sequence.to_string())),
            deliveries: rows.iter().map(delivery).collect(),
        })
    }

    async fn redeliver(&self, caller: Caller, req: proto::RedeliverEventRequest) -> Result<proto::Delivery, Error> {
        caller.require_any(&WEBHOOK_WRITERS)?;
        let mut v = Violations::new();
        let id = Collection::Webhooks.parse_field(&req.webhook, "webhook", &mut v);
        let sequence = Collection::Events.parse_field(&req.event, "event", &mut v).and_then(|s| {
            let n = s.parse::<i64>().ok().filter(|n| *n > 0);
            if n.is_none() {
                v.add("event", "must be `events/{sequence}` with a positive sequence number");
            }
            n
        });
        v.into_result()?;
        let (id, sequence) = (id.unwrap_or_default(), sequence.unwrap_or_default());
        let Some(hook) = self.state.store.get_webhook(&caller.org, id).await? else {
            return Err(Error::NotFound(req.webhook));
        };
        if sequence > self.state.store.latest_sequence(&caller.org).await? {
            return Err(Error::NotFound(req.event));
        }
        let before_creation = self.state.store.get_delivery(&caller.org, id, sequence).await?.is_none()
            && self
                .state
                .store
                .list_events(&caller.org, sequence - 1, &[], 0)
                .await?
                .first()
                .is_none_or(|e| e.sequence != sequence || e.created_at < hook.created_at);
        if before_creation {
            return Err(Error::FailedPrecondition(format!(
                "{} was recorded before {} was created; only later events are delivered to it",
                req.event, req.webhook
            )));
        }
        self.state.store.queue_redelivery(&caller.org, id, sequence, now_micros()).await?;
        self.state.store.events_committed(); // wake the dispatcher
        let row = self.state.store.get_delivery(&caller.org, id, sequence).await?;
        Ok(delivery(&row.ok_or_else(|| Error::Internal("a queued delivery cannot be read back".into()))?))
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    rpc!(create_webhook, create, proto::CreateWebhookRequest, proto::Webhook);
    rpc!(get_webhook, get, proto::GetWebhookRequest, proto::Webhook);
    rpc!(list_webhooks, list, proto::ListWebhooksRequest, proto::ListWebhooksResponse);
    rpc!(delete_webhook, delete, proto::DeleteWebhookRequest, ());
    rpc!(list_deliveries, deliveries, proto::ListDeliveriesRequest, proto::ListDeliveriesResponse);
    rpc!(redeliver_event, redeliver, proto::RedeliverEventRequest, proto::Delivery);
}

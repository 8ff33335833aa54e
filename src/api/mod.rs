//! The gRPC services. Each handler has four beats: authorise the caller's role,
//! validate and convert the request, ask the store (and the domain rules), convert
//! the answer. Permission is checked before validation, so a caller who may not
//! make a call learns nothing from its error details.

/// Implements one rpc of a generated service trait by authenticating the caller
/// and handing the request to the handler method of the same service. Written
/// in the shape `#[async_trait]` gives trait methods, because the attribute does
/// not see into macro invocations.
macro_rules! rpc {
    ($name:ident, $handler:ident, $req:ty, $resp:ty) => {
        fn $name<'life0, 'async_trait>(
            &'life0 self,
            request: tonic::Request<$req>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<tonic::Response<$resp>, tonic::Status>> + Send + 'async_trait>,
        >
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                let caller = $crate::auth::caller(&request)?;
                let slot = request.extensions().get::<$crate::api::audited::AuditSlot>().cloned();
                let target = $crate::api::audited::AuditTarget::audit_target(request.get_ref());
                let result = self.$handler(caller, request.into_inner()).await;
                if let Some(slot) = slot {
                    // A create names what it made; anything else what it was asked about.
                    let made = result.as_ref().ok().and_then($crate::api::audited::AuditResource::audit_resource);
                    slot.set(made.map_or(target, str::to_string));
                }
                Ok(tonic::Response::new(result?))
            })
        }
    };
}

mod audit;
pub mod audited;
mod calibration;
pub mod compliance;
pub mod convert;
mod events;
mod hiring;
mod import;
mod rubric;
mod scorecard;
pub mod streams;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::Digest;

pub use audit::AuditApi;
pub use calibration::CalibrationApi;
pub use calibration::{flag_kind, flag_name};
pub use compliance::{ComplianceApi, reseal_self_identifications, seal_self_identification};
pub use events::{EventApi, WebhookApi};
pub use hiring::HiringApi;
pub use import::MAX_ITEMS_PER_STREAM as MAX_IMPORT_ITEMS_PER_STREAM;
pub use rubric::RubricApi;
pub use scorecard::ScorecardApi;

use crate::domain::validate;
use crate::error::Error;
use crate::store::Store;

/// What every service shares.
pub struct AppState {
    pub store: Store,
    pub calibrator: std::sync::Arc<crate::calibrator::Calibrator>,
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Open server streams, counted against their limits.
    pub streams: streams::StreamLimits,
    /// Per organisation, the latest event sequence, shared by its streams.
    pub feeds: streams::EventFeeds,
    /// Seals self-identification at rest; `None`: not accepted.
    pub self_id_keys: Option<Arc<crate::auth::sealing::SealingKeys>>,
    /// The compliance reports' opened self-identification and decisions.
    pub compliance: compliance::ComplianceCache,
}

pub type State = Arc<AppState>;

/// A validated page request: where to resume and how many to return.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub size: usize,
    /// Cursor of the last item of the previous page; '' for the first page.
    pub after: String,
    scope: String,
}

/// The content of a page token. Opaque to clients; bound to the list it came
/// from (method and filters), so it cannot be replayed against another list.
#[derive(Serialize, Deserialize)]
struct PageToken {
    /// Cursor of the last item returned.
    a: String,
    /// Fingerprint of the method and filters.
    s: String,
}

fn scope_of(parts: &[&str]) -> String {
    let mut hasher = sha2::Sha256::new();
    for p in parts {
        hasher.update(p.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

impl PageRequest {
    /// Parses `page_size` and `page_token` of a list whose method and filters are
    /// `scope`.
    pub fn parse(page_size: i32, page_token: &str, scope: &[&str]) -> Result<Self, Error> {
        let size = validate::page_size(page_size)?;
        let scope = scope_of(scope);
        if page_token.is_empty() {
            return Ok(Self { size, after: String::new(), scope });
        }
        let invalid = || Error::invalid("page_token", "is not a token this list returned (were the filters changed?)");
        let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| invalid())?;
        let token: PageToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if token.s != scope || token.a.is_empty() {
            return Err(invalid());
        }
        Ok(Self { size, after: token.a, scope })
    }

    /// The token of the next page: '' when there is none.
    pub fn next_token(&self, more: bool, last_cursor: Option<String>) -> String {
        match (more, last_cursor) {
            (true, Some(a)) => {
                let json = serde_json::to_vec(&PageToken { a, s: self.scope.clone() }).unwrap_or_default();
                URL_SAFE_NO_PAD.encode(json)
            }
            _ => String::new(),
        }
    }

    pub fn store_page(&self) -> crate::store::Page<'_> {
        crate::store::Page::new(&self.after, self.size)
    }

    /// The store page of a list filtered by `update_time_after`.
    pub fn store_page_since(&self, updated_after: crate::domain::Micros) -> crate::store::Page<'_> {
        crate::store::Page { updated_after, ..self.store_page() }
    }
}

/// Parses an `update_time_after` filter: unset means every row.
pub fn updated_after(v: &mut crate::error::Violations, ts: Option<&prost_types::Timestamp>) -> crate::domain::Micros {
    match ts {
        None => crate::domain::Micros::MIN,
        Some(ts) => convert::micros(ts).unwrap_or_else(|| {
            v.add("update_time_after", "is not a valid timestamp");
            crate::domain::Micros::MIN
        }),
    }
}

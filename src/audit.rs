//! The audit log. The auth layer records one row per authenticated call (who,
//! roles, organisation, method, resource, request id, outcome, time); the
//! handler names the resource through an [`AuditSlot`] the layer puts in the
//! request. Rows go through a bounded channel to a writer that inserts them in
//! batches, so auditing adds no database round trip to a request; when the
//! channel is full, callers wait rather than lose records.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::{Micros, new_id, now_micros};
use crate::proto;
use crate::store::{AuditRow, Store};

/// Rows waiting to be written; a full queue makes callers wait.
const QUEUE: usize = 10_000;
/// Most rows per insert.
const BATCH: usize = 500;

/// Where a handler puts the resource a call is about.
#[derive(Clone, Default)]
pub struct AuditSlot(Arc<Mutex<String>>);

impl AuditSlot {
    pub fn set(&self, resource: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = resource;
    }
    pub fn take(&self) -> String {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Whether a method changes data.
pub fn is_write(method: &str) -> bool {
    let rpc = method.rsplit('/').next().unwrap_or_default();
    ["Create", "Revise", "Erase", "Submit", "Amend", "Import", "Delete", "Redeliver"].iter().any(|p| rpc.starts_with(p))
}

/// The caller's request id when it is well formed, else a new one.
pub fn request_id(header: Option<&str>) -> String {
    match header {
        Some(id)
            if !id.is_empty()
                && id.len() <= 100
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')) =>
        {
            id.to_string()
        }
        _ => new_id(),
    }
}

/// Sends rows to the writer.
#[derive(Clone)]
pub struct Auditor {
    queue: tokio::sync::mpsc::Sender<AuditRow>,
}

impl Auditor {
    /// Starts the writer; it drains the queue and ends when every sender is
    /// gone (await the handle at shutdown so queued rows are written).
    pub fn start(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, mut rows) = tokio::sync::mpsc::channel::<AuditRow>(QUEUE);
        let writer = tokio::spawn(async move {
            let mut batch: Vec<AuditRow> = Vec::with_capacity(BATCH);
            loop {
                // Written as soon as the queue is drained (or a batch is full):
                // under load rows gather into batches by themselves.
                let room = BATCH - batch.len();
                let open = rows.recv_many(&mut batch, room).await > 0;
                if !batch.is_empty() && (batch.len() >= BATCH || !open || rows.is_empty()) {
                    // Retry a failed insert a few times: the database may be
                    // restarting. Rows are lost only if it stays down.
                    let mut attempt = 0;
                    while let Err(e) = store.append_audit(&batch).await {
                        attempt += 1;
                        if attempt >= 5 {
                            tracing::error!(error = %e, rows = batch.len(), "audit rows could not be written");
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    }
                    batch.clear();
                }
                if !open {
                    return;
                }
            }
        });
        (Self { queue }, writer)
    }

    /// Queues one row (waits when the queue is full).
    #[allow(clippy::too_many_arguments)]
    pub async fn record(
        &self,
        org: &str,
        actor: &str,
        roles: String,
        method: &str,
        resource: String,
        request_id: String,
        code: tonic::Code,
    ) {
        let row = AuditRow {
            org_id: org.to_string(),
            id: new_id(),
            actor: actor.to_string(),
            roles,
            method: method.to_string(),
            action: if is_write(method) { "write" } else { "read" }.to_string(),
            resource,
            request_id,
            code: code_name(code).to_string(),
            created_at: now_micros(),
        };
        if self.queue.send(row).await.is_err() {
            tracing::error!("audit writer stopped; a row was not recorded");
        }
    }
}

/// `OK`, `PERMISSION_DENIED`, …: the canonical names.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The resource a request names (before it is handled).
pub trait AuditTarget {
    fn audit_target(&self) -> String;
}

/// The resource a response is (after a create).
pub trait AuditResource {
    fn audit_resource(&self) -> Option<&str> {
        None
    }
}

macro_rules! targets {
    ($($t:ty => |$r:ident| $e:expr),* $(,)?) => {
        $(impl AuditTarget for $t {
            fn audit_target(&self) -> String {
                let $r = self;
                $e
            }
        })*
    };
}

fn collection() -> String {
    String::new()
}

targets!(
    proto::CreateRubricRequest => |_r| collection(),
    proto::GetRubricRequest => |r| r.name.clone(),
    proto::ListRubricsRequest => |_r| collection(),
    proto::ReviseRubricRequest => |r| r.rubric.as_ref().map(|x| x.name.clone()).unwrap_or_default(),
    proto::ListRubricTemplatesRequest => |_r| collection(),
    proto::CreateRubricFromTemplateRequest => |_r| collection(),
    proto::CreateJobRequest => |_r| collection(),
    proto::GetJobRequest => |r| r.name.clone(),
    proto::ListJobsRequest => |_r| collection(),
    proto::CreateCandidateRequest => |_r| collection(),
    proto::GetCandidateRequest => |r| r.name.clone(),
    proto::ListCandidatesRequest => |_r| collection(),
    proto::EraseCandidateRequest => |r| r.name.clone(),
    proto::CreateInterviewRequest => |_r| collection(),
    proto::GetInterviewRequest => |r| r.name.clone(),
    proto::ListInterviewsRequest => |r| first_of(&[&r.candidate, &r.job]),
    proto::ListOverdueInterviewsRequest => |r| r.job.clone(),
    proto::SubmitScorecardRequest => |r| r.interview.clone(),
    proto::GetScorecardRequest => |r| r.name.clone(),
    proto::ListScorecardsRequest => |r| first_of(&[&r.candidate, &r.job]),
    proto::AmendScorecardRequest => |r| r.name.clone(),
    tonic::Streaming<proto::ImportScorecardsRequest> => |_r| collection(),
    proto::GetRankingRequest => |r| r.job.clone(),
    proto::GetCandidateAssessmentRequest => |r| r.candidate.clone(),
    proto::ListRaterReportsRequest => |_r| collection(),
    proto::GetRaterReportRequest => |r| format!("raters/{}", r.rater),
    proto::GetPanelReliabilityRequest => |r| first_of(&[&r.job, &r.rubric]),
    proto::ListEventsRequest => |_r| collection(),
    proto::CreateWebhookRequest => |_r| collection(),
    proto::GetWebhookRequest => |r| r.name.clone(),
    proto::ListWebhooksRequest => |_r| collection(),
    proto::DeleteWebhookRequest => |r| r.name.clone(),
    proto::ListDeliveriesRequest => |r| r.webhook.clone(),
    proto::RedeliverEventRequest => |r| r.webhook.clone(),
    proto::ListAuditEventsRequest => |r| r.resource.clone(),
);

/// The first non-empty of several filters.
fn first_of(names: &[&String]) -> String {
    names.iter().find(|n| !n.is_empty()).map(|n| n.to_string()).unwrap_or_default()
}

macro_rules! resources {
    (named: $($named:ty),*; other: $($other:ty),* $(,)?) => {
        $(impl AuditResource for $named {
            fn audit_resource(&self) -> Option<&str> {
                Some(&self.name)
            }
        })*
        $(impl AuditResource for $other {})*
    };
}

resources!(
    named: proto::Rubric, proto::Job, proto::Candidate, proto::Interview, proto::Scorecard, proto::Webhook;
    other: proto::ListRubricsResponse, proto::ListRubricTemplatesResponse, proto::ListJobsResponse,
        proto::ListCandidatesResponse, proto::ListInterviewsResponse, proto::ListOverdueInterviewsResponse,
        proto::ListScorecardsResponse, proto::ImportScorecardsResponse, proto::Ranking,
        proto::CandidateAssessment, proto::ListRaterReportsResponse, proto::RaterReport, proto::PanelReliability,
        proto::ListEventsResponse, proto::ListWebhooksResponse, (), proto::ListDeliveriesResponse,
        proto::Delivery, proto::ListAuditEventsResponse,
);

/// An audit row as the API shows it.
pub fn to_proto(row: AuditRow) -> proto::AuditEvent {
    let action =
        if row.action == "write" { proto::audit_event::Action::Write } else { proto::audit_event::Action::Read };
    proto::AuditEvent {
        name: format!("auditEvents/{}", row.id),
        actor: row.actor,
        roles: row.roles.split(',').filter(|r| !r.is_empty()).map(str::to_string).collect(),
        method: row.method,
        action: action as i32,
        resource: row.resource,
        request_id: row.request_id,
        code: row.code,
        time: crate::api::convert::timestamp(row.created_at),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_told_from_reads_by_method() {
        assert!(is_write("/scorecard.v1.ScorecardService/SubmitScorecard"));
        assert!(is_write("/scorecard.v1.HiringService/EraseCandidate"));
        assert!(is_write("/scorecard.v1.WebhookService/RedeliverEvent"));
        assert!(!is_write("/scorecard.v1.ScorecardService/GetScorecard"));
        assert!(!is_write("/scorecard.v1.CalibrationService/WatchRanking"));
    }

    #[test]
    fn request_ids_are_kept_only_when_well_formed() {
        assert_eq!(request_id(Some("req-1.a:b_c")), "req-1.a:b_c");
        assert_ne!(request_id(Some("has space")), "has space");
        assert_ne!(request_id(Some(&"x".repeat(101))), "x".repeat(101));
        assert_eq!(request_id(None).len(), 32);
    }
}

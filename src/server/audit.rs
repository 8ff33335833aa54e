//! The audit log's writer. The auth layer records one row per authenticated
//! call (who, roles, organisation, method, resource, request id, outcome,
//! time); the handler names the resource through the
//! [`AuditSlot`](crate::api::audited::AuditSlot) the layer puts in the
//! request. Rows go through a bounded channel to a writer that inserts them in
//! batches, so auditing adds no database round trip to a request; when the
//! channel is full, callers wait rather than lose records.

use std::time::Duration;

use crate::auth::Caller;
use crate::domain::{new_id, now_micros};
use crate::store::{AuditRow, Store};

/// Rows waiting to be written; a full queue makes callers wait.
const QUEUE: usize = 10_000;
/// Most rows per insert.
const BATCH: usize = 500;

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

    /// Queues the row of one call by `caller` (waits when the queue is full).
    pub async fn record(&self, caller: &Caller, method: &str, resource: String, request_id: String, code: tonic::Code) {
        let roles: Vec<&str> = caller.roles.iter().map(|r| r.as_str()).collect();
        let row = AuditRow {
            org_id: caller.org.clone(),
            id: new_id(),
            actor: caller.user.clone(),
            roles: roles.join(","),
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

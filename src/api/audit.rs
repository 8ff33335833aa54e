//! `AuditService`: the audit log, for admins.

use super::convert::time_window;
use super::{PageRequest, State};
use crate::auth::Caller;
use crate::domain::Role;
use crate::domain::validate::{self, limits};
use crate::error::{Error, Violations};
use crate::proto::{self, audit_service_server::AuditService};
use crate::store::{AuditFilter, AuditRow};

pub struct AuditApi {
    state: State,
}

impl AuditApi {
    pub fn new(state: State) -> Self {
        Self { state }
    }

    async fn list(
        &self,
        caller: Caller,
        req: proto::ListAuditEventsRequest,
    ) -> Result<proto::ListAuditEventsResponse, Error> {
        caller.require_any(&[Role::Admin])?;
        let mut v = Violations::new();
        validate::text(&mut v, "actor", &req.actor, false, limits::USER_ID);
        validate::text(&mut v, "resource", &req.resource, false, 200);
        validate::text(&mut v, "method", &req.method, false, 200);
        let action = match proto::audit_event::Action::try_from(req.action) {
            Ok(proto::audit_event::Action::Unspecified) => "",
            Ok(proto::audit_event::Action::Read) => "read",
            Ok(proto::audit_event::Action::Write) => "write",
            Err(_) => {
                v.add("action", "is not an action");
                ""
            }
        };
        let (start, end) = time_window(&mut v, req.start_time.as_ref(), req.end_time.as_ref());
        v.into_result()?;
        let filter = AuditFilter {
            actor: req.actor.clone(),
            resource: req.resource.clone(),
            method: req.method.clone(),
            action: action.to_string(),
            start,
            end,
        };
        let (start_text, end_text) = (start.to_string(), end.to_string());
        let page = PageRequest::parse(
            req.page_size,
            &req.page_token,
            &["ListAuditEvents", &req.actor, &req.resource, &req.method, action, &start_text, &end_text],
        )?;
        let rows = self.state.store.list_audit(&caller.org, &filter, &page.after, page.size).await?;
        let (rows, more) = crate::store::split_page(rows, page.size);
        Ok(proto::ListAuditEventsResponse {
            next_page_token: page.next_token(more, rows.last().map(|r| r.id.clone())),
            audit_events: rows.into_iter().map(to_proto).collect(),
        })
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    rpc!(list_audit_events, list, proto::ListAuditEventsRequest, proto::ListAuditEventsResponse);
}

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
        time: super::convert::timestamp(row.created_at),
    }
}

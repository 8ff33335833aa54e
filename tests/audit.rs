//! The audit log end to end: every authenticated call recorded with who, roles,
//! method, resource, request id and outcome; readable by admins of the same
//! organisation only; free of personal data, also after erasure.

mod common;

use std::time::Duration;

use common::{Org, TestApp, expect_code, expect_violations, req, token};
use scorecard::proto::{self, audit_event::Action};
use tonic::Code;

on_both_databases!(every_call_is_recorded_and_only_admins_read_it);

async fn audit_rows(app: &TestApp, admin: &str, filter: proto::ListAuditEventsRequest) -> Vec<proto::AuditEvent> {
    let mut out = Vec::new();
    let mut request = proto::ListAuditEventsRequest { page_size: 3, ..filter };
    loop {
        let page = app.audit().list_audit_events(req(admin, request.clone())).await.expect("audit").into_inner();
        out.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            return out;
        }
        request.page_token = page.next_page_token;
    }
}

async fn every_call_is_recorded_and_only_admins_read_it(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let candidate = org.candidate(&app, "c-1").await;
    let interview = org.interview(&app, &candidate, "ivan").await;
    let scorecard = org.submit(&app, &interview).await;

    // A recruiter reads the scorecard, naming the request.
    let rita = token("rita", "acme", &["recruiter"]);
    let mut read = req(&rita, proto::GetScorecardRequest { name: scorecard.name.clone(), revision: 0 });
    read.metadata_mut().insert("x-request-id", "audit-test-1".parse().unwrap());
    let response = app.scorecards().get_scorecard(read).await.expect("read scorecard");
    assert_eq!(response.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("audit-test-1"));
    // An interviewer tries someone else's interview.
    let lena = token("lena", "acme", &["interviewer"]);
    expect_code(
        app.hiring().get_interview(req(&lena, proto::GetInterviewRequest { name: interview.name.clone() })).await,
        Code::PermissionDenied,
    );

    // Rows are written in the background: wait for the last call's.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = audit_rows(&app, &org.admin, proto::ListAuditEventsRequest::default()).await;
        if rows.iter().any(|r| r.actor == "lena") {
            break rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "audit rows did not appear: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let read_row = rows.iter().find(|r| r.request_id == "audit-test-1").expect("the named read");
    assert_eq!(read_row.actor, "rita");
    assert_eq!(read_row.roles, ["recruiter"]);
    assert_eq!(read_row.method, "/scorecard.v1.ScorecardService/GetScorecard");
    assert_eq!(read_row.resource, scorecard.name);
    assert_eq!(read_row.action, Action::Read as i32);
    assert_eq!(read_row.code, "OK");
    let denied = rows.iter().find(|r| r.actor == "lena").expect("the denied read");
    assert_eq!((denied.code.as_str(), denied.resource.as_str()), ("PERMISSION_DENIED", interview.name.as_str()));
    let submit =
        rows.iter().find(|r| r.method == "/scorecard.v1.ScorecardService/SubmitScorecard").expect("the submission");
    assert_eq!((submit.actor.as_str(), submit.action), ("ivan", Action::Write as i32));
    assert_eq!(submit.resource, scorecard.name, "a write names what it made");
    assert!(rows.iter().any(|r| r.method.ends_with("/CreateCandidate") && r.resource == candidate.name));
    // Newest first, each once.
    let names: std::collections::BTreeSet<_> = rows.iter().map(|r| &r.name).collect();
    assert_eq!(names.len(), rows.len());
    let at = |r: &proto::AuditEvent| r.time.map(|t| (t.seconds, t.nanos)).unwrap_or_default();
    assert!(rows.windows(2).all(|w| at(&w[0]) >= at(&w[1])));

    // Filters.
    let ivan_writes = audit_rows(
        &app,
        &org.admin,
        proto::ListAuditEventsRequest { actor: "ivan".into(), action: Action::Write as i32, ..Default::default() },
    )
    .await;
    assert_eq!(ivan_writes.len(), 1);
    let about_scorecard = audit_rows(
        &app,
        &org.admin,
        proto::ListAuditEventsRequest { resource: scorecard.name.clone(), ..Default::default() },
    )
    .await;
    assert!(about_scorecard.iter().all(|r| r.resource == scorecard.name) && about_scorecard.len() >= 2);
    // A time window: from the submission's time on, the submission and what
    // followed it; up to it, nothing at or after it.
    let submitted_at = submit.time;
    let from =
        audit_rows(&app, &org.admin, proto::ListAuditEventsRequest { start_time: submitted_at, ..Default::default() })
            .await;
    assert!(from.iter().any(|r| r.name == submit.name) && from.iter().all(|r| at(r) >= at(submit)));
    let until =
        audit_rows(&app, &org.admin, proto::ListAuditEventsRequest { end_time: submitted_at, ..Default::default() })
            .await;
    assert!(!until.is_empty() && until.iter().all(|r| at(r) < at(submit)));
    expect_violations(
        app.audit()
            .list_audit_events(req(
                &org.admin,
                proto::ListAuditEventsRequest {
                    action: 9,
                    start_time: Some(prost_types::Timestamp { seconds: 0, nanos: -5 }),
                    ..Default::default()
                },
            ))
            .await,
        &["action", "start_time"],
    );

    // Another organisation's admin sees none of it.
    let other = token("root", "globex", &["admin"]);
    let theirs = audit_rows(&app, &other, proto::ListAuditEventsRequest::default()).await;
    assert!(theirs.iter().all(|r| r.actor == "root"), "only globex's own calls: {theirs:?}");

    // No personal data, before or after erasure.
    app.hiring()
        .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name: candidate.name.clone() }))
        .await
        .expect("erase");
    let all = format!("{:?}", audit_rows(&app, &org.admin, proto::ListAuditEventsRequest::default()).await);
    for personal in [candidate.display_name.as_str(), candidate.email.as_str(), "c-1"] {
        assert!(!all.contains(personal), "`{personal}` is in the audit log");
    }
}

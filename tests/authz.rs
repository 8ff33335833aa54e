//! The authorisation matrix: every RPC of every `scorecard.v1` service, called by
//! every role, in the caller's own organisation and in another one. The RPC list
//! comes from the served descriptors, so a new RPC without an entry here fails
//! the test.

mod common;

use std::collections::{BTreeSet, HashSet};

use common::{Org, TestApp, rating, req, sample_rubric, token};
use prost::Message;
use scorecard::proto::{self, Recommendation};
use tonic::{Code, Status};

on_both_databases!(every_rpc_by_every_role_in_both_tenants);

/// Every role a token can carry: each RPC is called with each.
const EVERY_ROLE: &[&str] = &["admin", "integration", "recruiter", "interviewer", "compliance"];
/// The hiring team: "every role" of the hiring RPCs. `compliance` reads
/// aggregate reports and nothing else.
const ALL: &[&str] = &["admin", "integration", "recruiter", "interviewer"];
const COMPLIANCE: &[&str] = &["compliance"];
const WRITERS: &[&str] = &["admin", "integration"];
const SCORERS: &[&str] = &["admin", "integration", "interviewer"];
const READERS: &[&str] = &["admin", "integration", "recruiter"];
const ADMIN: &[&str] = &["admin"];

/// Which roles may call each RPC.
const MATRIX: &[(&str, &[&str])] = &[
    ("/scorecard.v1.RubricService/CreateRubric", ADMIN),
    ("/scorecard.v1.RubricService/GetRubric", ALL),
    ("/scorecard.v1.RubricService/ListRubrics", ALL),
    ("/scorecard.v1.RubricService/ReviseRubric", ADMIN),
    ("/scorecard.v1.RubricService/ListRubricTemplates", ALL),
    ("/scorecard.v1.RubricService/CreateRubricFromTemplate", ADMIN),
    ("/scorecard.v1.HiringService/CreateJob", WRITERS),
    ("/scorecard.v1.HiringService/GetJob", ALL),
    ("/scorecard.v1.HiringService/UpdateJob", WRITERS),
    ("/scorecard.v1.HiringService/ListJobs", ALL),
    ("/scorecard.v1.HiringService/CreateCandidate", WRITERS),
    ("/scorecard.v1.HiringService/GetCandidate", ALL),
    ("/scorecard.v1.HiringService/ListCandidates", ALL),
    ("/scorecard.v1.HiringService/EraseCandidate", WRITERS),
    ("/scorecard.v1.HiringService/CreateInterview", WRITERS),
    ("/scorecard.v1.HiringService/GetInterview", ALL),
    ("/scorecard.v1.HiringService/ListInterviews", ALL),
    ("/scorecard.v1.HiringService/ListOverdueInterviews", ALL),
    ("/scorecard.v1.ScorecardService/SubmitScorecard", SCORERS),
    ("/scorecard.v1.ScorecardService/GetScorecard", ALL),
    ("/scorecard.v1.ScorecardService/ListScorecards", ALL),
    ("/scorecard.v1.ScorecardService/AmendScorecard", SCORERS),
    ("/scorecard.v1.CalibrationService/GetRanking", READERS),
    ("/scorecard.v1.CalibrationService/GetCandidateAssessment", READERS),
    ("/scorecard.v1.CalibrationService/ListRaterReports", READERS),
    ("/scorecard.v1.CalibrationService/GetRaterReport", ALL),
    ("/scorecard.v1.CalibrationService/GetPanelReliability", READERS),
    ("/scorecard.v1.CalibrationService/WatchRanking", READERS),
    ("/scorecard.v1.CalibrationService/CompareCandidates", READERS),
    ("/scorecard.v1.CalibrationService/PlanInterviews", READERS),
    ("/scorecard.v1.ScorecardService/ImportScorecards", WRITERS),
    ("/scorecard.v1.EventService/ListEvents", READERS),
    ("/scorecard.v1.EventService/WatchEvents", READERS),
    ("/scorecard.v1.WebhookService/CreateWebhook", ADMIN),
    ("/scorecard.v1.WebhookService/GetWebhook", WRITERS),
    ("/scorecard.v1.WebhookService/ListWebhooks", WRITERS),
    ("/scorecard.v1.WebhookService/DeleteWebhook", ADMIN),
    ("/scorecard.v1.WebhookService/ListDeliveries", WRITERS),
    ("/scorecard.v1.WebhookService/RedeliverEvent", ADMIN),
    ("/scorecard.v1.AuditService/ListAuditEvents", ADMIN),
    ("/scorecard.v1.ComplianceService/SetSelfIdentification", WRITERS),
    ("/scorecard.v1.ComplianceService/GetAdverseImpactReport", COMPLIANCE),
    ("/scorecard.v1.ComplianceService/ListRaterDifferentials", COMPLIANCE),
    ("/scorecard.v1.HiringService/RecordDecision", READERS),
    ("/scorecard.v1.HiringService/ListDecisions", READERS),
];

/// Every method of every `scorecard.v1` service the server describes.
fn served_methods() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(scorecard::proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut methods = BTreeSet::new();
    for file in set.file.iter().filter(|f| f.package() == "scorecard.v1") {
        for service in &file.service {
            for method in &service.method {
                methods.insert(format!("/scorecard.v1.{}/{}", service.name(), method.name()));
            }
        }
    }
    methods
}

/// Tenant A's resources, all named so a response can be checked for leaks.
struct Fixture {
    org: Org,
    candidate: proto::Candidate,
    /// A second rated candidate of the job (by judy), for comparisons.
    second: proto::Candidate,
    interview: proto::Interview,
    scorecard: proto::Scorecard,
    webhook: proto::Webhook,
    /// An event recorded after the webhook was created.
    event: String,
    names: HashSet<String>,
}

fn webhook_at(url: &str) -> proto::CreateWebhookRequest {
    proto::CreateWebhookRequest { webhook: Some(proto::Webhook { url: url.into(), ..Default::default() }) }
}

impl Fixture {
    async fn new(app: &TestApp) -> Fixture {
        let org = Org::new(app, "tenant-a").await;
        let candidate = org.candidate(app, "ats-1").await;
        let interview = org.interview(app, &candidate, "ivan").await;
        // Nothing listens on the discard port: deliveries fail, harmlessly.
        let webhook = app
            .webhooks()
            .create_webhook(req(&org.admin, webhook_at("http://127.0.0.1:9/hook")))
            .await
            .expect("create webhook")
            .into_inner();
        let scorecard = org.submit(app, &interview).await;
        let events = app
            .events()
            .list_events(req(&org.admin, proto::ListEventsRequest::default()))
            .await
            .expect("list events")
            .into_inner();
        let event = events.events.last().expect("an event").name.clone();
        let second = org.candidate(app, "ats-2").await;
        org.submit(app, &org.interview(app, &second, "judy").await).await;
        let names = [
            &org.rubric.name,
            &org.job.name,
            &candidate.name,
            &second.name,
            &interview.name,
            &scorecard.name,
            &webhook.name,
        ]
        .into_iter()
        .cloned()
        .collect();
        Fixture { org, candidate, second, interview, scorecard, webhook, event, names }
    }

    /// How many of tenant A's resources a list of names reveals.
    fn revealed<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> usize {
        names.into_iter().filter(|n| self.names.contains(*n)).count()
    }
}

/// Calls `method` with `token` on tenant A's resources; returns how many of
/// tenant A's resources the answer shows.
async fn call(app: &TestApp, fx: &Fixture, method: &str, token: &str) -> Result<usize, Status> {
    let rubric = fx.org.rubric.name.clone();
    let job = fx.org.job.name.clone();
    let candidate = fx.candidate.name.clone();
    let interview = fx.interview.name.clone();
    let scorecard = fx.scorecard.name.clone();
    match method.rsplit('/').next().unwrap_or_default() {
        "CreateRubric" => app
            .rubrics()
            .create_rubric(req(token, proto::CreateRubricRequest { rubric: Some(sample_rubric("Another")) }))
            .await
            .map(|_| 0),
        "GetRubric" => {
            app.rubrics().get_rubric(req(token, proto::GetRubricRequest { name: rubric, revision: 0 })).await.map(one)
        }
        "ListRubrics" => app
            .rubrics()
            .list_rubrics(req(token, proto::ListRubricsRequest::default()))
            .await
            .map(|r| fx.revealed(r.get_ref().rubrics.iter().map(|x| &x.name))),
        "ReviseRubric" => {
            // Always revise from the latest etag so each permitted call succeeds.
            let admin = &fx.org.admin;
            let current = app
                .rubrics()
                .get_rubric(req(admin, proto::GetRubricRequest { name: rubric.clone(), revision: 0 }))
                .await?
                .into_inner();
            app.rubrics().revise_rubric(req(token, proto::ReviseRubricRequest { rubric: Some(current) })).await.map(one)
        }
        "ListRubricTemplates" => {
            app.rubrics().list_rubric_templates(req(token, proto::ListRubricTemplatesRequest {})).await.map(|_| 0)
        }
        "CreateRubricFromTemplate" => app
            .rubrics()
            .create_rubric_from_template(req(
                token,
                proto::CreateRubricFromTemplateRequest { template: "backend-engineer".into() },
            ))
            .await
            .map(|_| 0),
        "CreateJob" => app
            .hiring()
            .create_job(req(
                token,
                proto::CreateJobRequest { job: Some(proto::Job { title: "Job".into(), rubric, ..Default::default() }) },
            ))
            .await
            .map(|_| 1),
        "GetJob" => app.hiring().get_job(req(token, proto::GetJobRequest { name: job })).await.map(one),
        "UpdateJob" => app
            .hiring()
            .update_job(req(
                token,
                proto::UpdateJobRequest {
                    job: Some(proto::Job { name: job, hiring_bar: Some(2.5), ..Default::default() }),
                    update_mask: Some(prost_types::FieldMask { paths: vec!["hiring_bar".into()] }),
                },
            ))
            .await
            .map(one),
        "CompareCandidates" => app
            .calibration()
            .compare_candidates(req(
                token,
                proto::CompareCandidatesRequest { job, candidates: vec![candidate, fx.second.name.clone()] },
            ))
            .await
            .map(|r| fx.revealed(&r.get_ref().candidates)),
        "PlanInterviews" => app
            .calibration()
            .plan_interviews(req(token, proto::PlanInterviewsRequest { job, slots: 2, ..Default::default() }))
            .await
            .map(|r| fx.revealed(r.get_ref().suggestions.iter().map(|s| &s.candidate)).max(1)),
        "ListJobs" => app
            .hiring()
            .list_jobs(req(token, proto::ListJobsRequest::default()))
            .await
            .map(|r| fx.revealed(r.get_ref().jobs.iter().map(|x| &x.name))),
        "CreateCandidate" => app
            .hiring()
            .create_candidate(req(
                token,
                proto::CreateCandidateRequest {
                    candidate: Some(proto::Candidate {
                        external_id: format!("new-{}", rand_suffix()),
                        display_name: "New".into(),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .map(|_| 0),
        "GetCandidate" => {
            app.hiring().get_candidate(req(token, proto::GetCandidateRequest { name: candidate })).await.map(one)
        }
        "ListCandidates" => app
            .hiring()
            .list_candidates(req(token, proto::ListCandidatesRequest::default()))
            .await
            .map(|r| fx.revealed(r.get_ref().candidates.iter().map(|x| &x.name))),
        "EraseCandidate" => {
            // Erase a fresh candidate of tenant A, never the fixture's.
            let victim = fx.org.candidate(app, &format!("erase-{}", rand_suffix())).await;
            app.hiring().erase_candidate(req(token, proto::EraseCandidateRequest { name: victim.name })).await.map(one)
        }
        "CreateInterview" => app
            .hiring()
            .create_interview(req(
                token,
                proto::CreateInterviewRequest {
                    interview: Some(proto::Interview {
                        job,
                        candidate,
                        interviewer: "ivan".into(),
                        focus_competencies: vec!["api_design".into()],
                        scheduled_time: Some(prost_types::Timestamp { seconds: 1_900_000_000, nanos: 0 }),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .map(one),
        "GetInterview" => {
            app.hiring().get_interview(req(token, proto::GetInterviewRequest { name: interview })).await.map(one)
        }
        "ListInterviews" => app
            .hiring()
            .list_interviews(req(token, proto::ListInterviewsRequest { job, ..Default::default() }))
            .await
            .map(|r| fx.revealed(r.get_ref().interviews.iter().map(|x| &x.name))),
        "ListOverdueInterviews" => app
            .hiring()
            .list_overdue_interviews(req(token, proto::ListOverdueInterviewsRequest::default()))
            .await
            .map(|r| fx.revealed(r.get_ref().interviews.iter().map(|x| &x.name))),
        "SubmitScorecard" => {
            // A fresh interview of tenant A for ivan, so each permitted call can succeed.
            let fresh = fx.org.interview(app, &fx.candidate, "ivan").await;
            app.scorecards().submit_scorecard(req(token, Org::submission(&fresh, ""))).await.map(one)
        }
        "GetScorecard" => app
            .scorecards()
            .get_scorecard(req(token, proto::GetScorecardRequest { name: scorecard, revision: 0 }))
            .await
            .map(one),
        "ListScorecards" => app
            .scorecards()
            .list_scorecards(req(token, proto::ListScorecardsRequest::default()))
            .await
            .map(|r| fx.revealed(r.get_ref().scorecards.iter().map(|x| &x.name))),
        "AmendScorecard" => app
            .scorecards()
            .amend_scorecard(req(
                token,
                proto::AmendScorecardRequest {
                    name: scorecard,
                    ratings: vec![rating("api_design", 2)],
                    recommendation: Recommendation::No as i32,
                    reason: "matrix".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(one),
        "GetRanking" => app
            .calibration()
            .get_ranking(req(token, proto::GetRankingRequest { job, ..Default::default() }))
            .await
            .map(|r| fx.revealed(r.get_ref().entries.iter().map(|e| &e.candidate))),
        "GetCandidateAssessment" => app
            .calibration()
            .get_candidate_assessment(req(token, proto::GetCandidateAssessmentRequest { job, candidate }))
            .await
            .map(one),
        "ListRaterReports" => {
            app.calibration().list_rater_reports(req(token, proto::ListRaterReportsRequest::default())).await.map(|_| 0)
        }
        "GetRaterReport" => app
            .calibration()
            .get_rater_report(req(token, proto::GetRaterReportRequest { rater: "ivan".into() }))
            .await
            .map(one),
        "GetPanelReliability" => app
            .calibration()
            .get_panel_reliability(req(token, proto::GetPanelReliabilityRequest { job, ..Default::default() }))
            .await
            .map(one),
        "WatchRanking" => {
            let mut stream =
                app.calibration().watch_ranking(req(token, proto::WatchRankingRequest { job })).await?.into_inner();
            let first = stream.message().await?.ok_or_else(|| Status::internal("no first ranking"))?;
            Ok(fx.revealed(first.entries.iter().map(|e| &e.candidate)))
        }
        "ImportScorecards" => {
            let item = proto::ImportItem {
                item: Some(proto::import_item::Item::Candidate(proto::ImportCandidate {
                    external_id: format!("imported-{}", rand_suffix()),
                    display_name: "Imported".into(),
                    email: String::new(),
                })),
            };
            let stream = tokio_stream::iter(vec![proto::ImportScorecardsRequest { items: vec![item] }]);
            app.scorecards().import_scorecards(req(token, stream)).await.map(|_| 0)
        }
        "ListEvents" => app
            .events()
            .list_events(req(token, proto::ListEventsRequest::default()))
            .await
            .map(|r| fx.revealed(r.get_ref().events.iter().map(|e| &e.resource))),
        "WatchEvents" => {
            let mut stream =
                app.events().watch_events(req(token, proto::WatchEventsRequest::default())).await?.into_inner();
            // Another tenant may have no events at all: then nothing arrives.
            match tokio::time::timeout(std::time::Duration::from_millis(500), stream.message()).await {
                Ok(first) => Ok(first?.map_or(0, |e| fx.revealed([&e.resource]))),
                Err(_) => Ok(0),
            }
        }
        "CreateWebhook" => {
            app.webhooks().create_webhook(req(token, webhook_at("http://127.0.0.1:9/x"))).await.map(|_| 0)
        }
        "GetWebhook" => app
            .webhooks()
            .get_webhook(req(token, proto::GetWebhookRequest { name: fx.webhook.name.clone() }))
            .await
            .map(one),
        "ListWebhooks" => app
            .webhooks()
            .list_webhooks(req(token, proto::ListWebhooksRequest::default()))
            .await
            .map(|r| fx.revealed(r.get_ref().webhooks.iter().map(|w| &w.name))),
        "DeleteWebhook" => {
            // Delete a fresh webhook of tenant A, never the fixture's.
            let victim = app
                .webhooks()
                .create_webhook(req(&fx.org.admin, webhook_at("http://127.0.0.1:9/victim")))
                .await?
                .into_inner();
            app.webhooks().delete_webhook(req(token, proto::DeleteWebhookRequest { name: victim.name })).await.map(one)
        }
        "ListDeliveries" => app
            .webhooks()
            .list_deliveries(req(
                token,
                proto::ListDeliveriesRequest { webhook: fx.webhook.name.clone(), ..Default::default() },
            ))
            .await
            .map(one),
        "RedeliverEvent" => app
            .webhooks()
            .redeliver_event(req(
                token,
                proto::RedeliverEventRequest { webhook: fx.webhook.name.clone(), event: fx.event.clone() },
            ))
            .await
            .map(one),
        "ListAuditEvents" => app
            .audit()
            .list_audit_events(req(token, proto::ListAuditEventsRequest { page_size: 1000, ..Default::default() }))
            .await
            // A tenant's log records the names its own callers sent, including
            // another tenant's (a probe is worth recording); what would leak is a
            // successful read of one.
            .map(|r| {
                let reads = r.get_ref().audit_events.iter().filter(|e| e.code == "OK" && e.method.contains("/Get"));
                fx.revealed(reads.map(|e| &e.resource))
            }),
        "SetSelfIdentification" => app
            .compliance()
            .set_self_identification(req(
                token,
                proto::SetSelfIdentificationRequest {
                    candidate,
                    sex: proto::Sex::Female as i32,
                    race_ethnicity: proto::RaceEthnicity::Asian as i32,
                },
            ))
            .await
            .map(one),
        "GetAdverseImpactReport" => app
            .compliance()
            .get_adverse_impact_report(req(token, proto::GetAdverseImpactReportRequest { job, ..Default::default() }))
            .await
            // Aggregates only: no resource of tenant A is named in a report.
            .map(|_| 0),
        "ListRaterDifferentials" => app
            .compliance()
            .list_rater_differentials(req(
                token,
                proto::ListRaterDifferentialsRequest { grouping: proto::Grouping::Sex as i32, ..Default::default() },
            ))
            .await
            // Aggregates per rater of the caller's own organisation only.
            .map(|_| 0),
        "RecordDecision" => app
            .hiring()
            .record_decision(req(
                token,
                proto::RecordDecisionRequest {
                    job,
                    candidate,
                    outcome: proto::Outcome::Advanced as i32,
                    ..Default::default()
                },
            ))
            .await
            .map(one),
        "ListDecisions" => app
            .hiring()
            .list_decisions(req(token, proto::ListDecisionsRequest { job, ..Default::default() }))
            .await
            .map(|r| fx.revealed(r.get_ref().decisions.iter().map(|d| &d.candidate))),
        other => panic!("{method}: the matrix test has no call for `{other}`; add one"),
    }
}

/// A call whose success reveals one of tenant A's resources.
fn one<T>(_: T) -> usize {
    1
}

fn rand_suffix() -> String {
    scorecard::domain::new_id()
}

fn token_for(role: &str, org: &str) -> String {
    // The interviewer is ivan, who owns the fixture's interview and scorecard.
    let sub = if role == "interviewer" { "ivan".to_string() } else { format!("{role}-user") };
    token(&sub, org, &[role])
}

async fn every_rpc_by_every_role_in_both_tenants(app: TestApp) {
    let methods = served_methods();
    let listed: BTreeSet<String> = MATRIX.iter().map(|(m, _)| m.to_string()).collect();
    let missing: Vec<_> = methods.difference(&listed).collect();
    assert!(missing.is_empty(), "RPCs without an authorisation matrix entry: {missing:?}");
    let stale: Vec<_> = listed.difference(&methods).collect();
    assert!(stale.is_empty(), "matrix entries for RPCs that do not exist: {stale:?}");

    let fx = Fixture::new(&app).await;
    let mut checked = 0;
    for (method, allowed) in MATRIX {
        for role in EVERY_ROLE {
            let permitted = allowed.contains(role);
            // Own tenant.
            let own = call(&app, &fx, method, &token_for(role, "tenant-a")).await;
            match (&own, permitted) {
                (Ok(_), true) => {}
                (Err(s), false) if s.code() == Code::PermissionDenied => {}
                _ => panic!("{method} as {role} in its own tenant: unexpected {own:?} (permitted: {permitted})"),
            }
            // Another tenant, naming tenant A's resources.
            let other = call(&app, &fx, method, &token_for(role, "tenant-b")).await;
            match (&other, permitted) {
                (Ok(0), true) => {}
                (Err(s), true) if s.code() == Code::NotFound => {}
                (Err(s), false) if s.code() == Code::PermissionDenied => {}
                _ => panic!("{method} as {role} from another tenant: unexpected {other:?} (permitted: {permitted})"),
            }
            checked += 2;
        }
    }
    assert_eq!(checked, MATRIX.len() * EVERY_ROLE.len() * 2);
}

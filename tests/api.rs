//! End-to-end behaviour of every RPC over real gRPC, on SQLite and PostgreSQL.

mod common;

use common::{Org, TestApp, expect_code, expect_violations, rating, req, sample_rubric, token};
use scorecard::proto::{self, Recommendation, interview::State};
use tonic::Code;

on_both_databases!(
    rubric_lifecycle_and_immutable_revisions,
    rubric_validation_names_every_bad_field,
    rubric_templates,
    jobs_candidates_and_interviews,
    interview_rules,
    submit_get_and_list_scorecards,
    submission_validation_leaves_nothing_behind,
    second_submission_is_already_exists,
    idempotent_retries_and_key_reuse,
    concurrent_retries_create_exactly_one_scorecard,
    amendments_keep_every_revision,
    blind_review,
    interviewers_act_only_on_their_own_interviews,
    erasure_removes_personal_data_everywhere,
    text_round_trips_byte_exact,
    pagination_visits_every_item_once,
    overdue_interviews,
    oversized_messages_are_refused,
    health_and_reflection_need_no_token,
);

async fn rubric_lifecycle_and_immutable_revisions(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let mut rubrics = app.rubrics();
    let created = &org.rubric;
    assert!(created.name.starts_with("rubrics/"));
    assert_eq!(created.revision, 1);
    assert!(!created.etag.is_empty());
    assert_eq!(created.competencies.len(), 4);
    assert_eq!(created.competencies[0].anchors.len(), 4);

    let got = rubrics
        .get_rubric(req(&org.admin, proto::GetRubricRequest { name: created.name.clone(), revision: 0 }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(&got, created);

    // Revise: a new revision; the job stays pinned to revision 1.
    let mut next = got.clone();
    next.title = "Backend (2027)".into();
    next.scale = Some(proto::Scale { min: 1, max: 5 });
    next.competencies.truncate(3);
    let revised = rubrics
        .revise_rubric(req(&org.admin, proto::ReviseRubricRequest { rubric: Some(next.clone()) }))
        .await
        .expect("revise")
        .into_inner();
    assert_eq!(revised.revision, 2);
    assert_eq!(revised.title, "Backend (2027)");
    assert_ne!(revised.etag, created.etag);
    assert_eq!(revised.create_time, created.create_time);

    // The old etag is stale now: ABORTED, and nothing changes.
    let stale = rubrics.revise_rubric(req(&org.admin, proto::ReviseRubricRequest { rubric: Some(next) })).await;
    expect_code(stale, Code::Aborted);

    let first = rubrics
        .get_rubric(req(&org.admin, proto::GetRubricRequest { name: created.name.clone(), revision: 1 }))
        .await
        .expect("revision 1")
        .into_inner();
    assert_eq!(first.title, "Backend");
    assert_eq!(first.competencies.len(), 4);
    let missing =
        rubrics.get_rubric(req(&org.admin, proto::GetRubricRequest { name: created.name.clone(), revision: 3 })).await;
    expect_code(missing, Code::NotFound);

    let job = app
        .hiring()
        .get_job(req(&org.admin, proto::GetJobRequest { name: org.job.name.clone() }))
        .await
        .expect("job")
        .into_inner();
    assert_eq!(job.rubric_revision, 1);

    let listed =
        rubrics.list_rubrics(req(&org.admin, proto::ListRubricsRequest::default())).await.expect("list").into_inner();
    assert_eq!(listed.rubrics.len(), 1);
    assert_eq!(listed.rubrics[0].revision, 2);
    assert!(listed.next_page_token.is_empty());

    // A job created now pins revision 2; one may also pin revision 1 explicitly.
    let pinned = app
        .hiring()
        .create_job(req(
            &org.admin,
            proto::CreateJobRequest {
                job: Some(proto::Job {
                    title: "Old rubric".into(),
                    rubric: created.name.clone(),
                    rubric_revision: 1,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("pinned job")
        .into_inner();
    assert_eq!(pinned.rubric_revision, 1);
}

async fn rubric_validation_names_every_bad_field(app: TestApp) {
    let admin = token("root", "acme", &["admin"]);
    let mut rubrics = app.rubrics();
    expect_violations(
        rubrics.create_rubric(req(&admin, proto::CreateRubricRequest { rubric: None })).await,
        &["rubric"],
    );

    let mut bad = sample_rubric("Backend");
    bad.title = String::new();
    bad.scale = Some(proto::Scale { min: 1, max: 42 });
    bad.dimensions[0].weight = -0.5;
    bad.competencies[1].key = "Not A Key".into();
    bad.competencies[2].dimension_key = "nope".into();
    bad.competencies[3].anchors[0].label = String::new();
    let result = rubrics.create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(bad) })).await;
    expect_violations(
        result,
        &[
            "rubric.title",
            "rubric.scale",
            "rubric.dimensions[0].weight",
            "rubric.competencies[1].key",
            "rubric.competencies[2].dimension_key",
            "rubric.competencies[3].anchors[0].label",
        ],
    );

    let mut zero = sample_rubric("Zero");
    for d in &mut zero.dimensions {
        d.weight = 0.0;
    }
    expect_violations(
        rubrics.create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(zero) })).await,
        &["rubric.dimensions"],
    );

    let mut anchors = sample_rubric("Anchors");
    anchors.competencies[0].anchors[1].score = 1;
    anchors.competencies[0].anchors[2].score = 9;
    expect_violations(
        rubrics.create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(anchors) })).await,
        &["rubric.competencies[0].anchors[1].score", "rubric.competencies[0].anchors[2].score"],
    );

    // Nothing was created by any of the failures.
    let listed = rubrics.list_rubrics(req(&admin, proto::ListRubricsRequest::default())).await.expect("list");
    assert!(listed.into_inner().rubrics.is_empty());

    // Revise needs a name and an etag.
    let mut no_etag = sample_rubric("x");
    no_etag.name = "rubrics/abc".into();
    expect_violations(
        rubrics.revise_rubric(req(&admin, proto::ReviseRubricRequest { rubric: Some(no_etag) })).await,
        &["rubric.etag"],
    );
    let mut unknown = sample_rubric("x");
    unknown.name = "rubrics/abc".into();
    unknown.etag = "r1-0".into();
    expect_code(
        rubrics.revise_rubric(req(&admin, proto::ReviseRubricRequest { rubric: Some(unknown) })).await,
        Code::NotFound,
    );
}

async fn rubric_templates(app: TestApp) {
    let admin = token("root", "acme", &["admin"]);
    let listed = app
        .rubrics()
        .list_rubric_templates(req(&token("ivan", "acme", &["interviewer"]), proto::ListRubricTemplatesRequest {}))
        .await
        .expect("templates")
        .into_inner();
    let ids: Vec<_> = listed.templates.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["backend-engineer", "engineering-manager"]);
    let backend = listed.templates[0].rubric.clone().expect("content");
    assert_eq!(backend.competencies.len(), 10);
    assert!(backend.competencies.iter().all(|c| c.anchors.len() == 4));
    let created = app
        .rubrics()
        .create_rubric_from_template(req(
            &admin,
            proto::CreateRubricFromTemplateRequest { template: "backend-engineer".into() },
        ))
        .await
        .expect("instantiate")
        .into_inner();
    assert!(created.name.starts_with("rubrics/"));
    assert_eq!(created.revision, 1);
    assert_eq!(created.competencies, backend.competencies);
    expect_code(
        app.rubrics()
            .create_rubric_from_template(req(
                &admin,
                proto::CreateRubricFromTemplateRequest { template: "chef".into() },
            ))
            .await,
        Code::NotFound,
    );
    expect_violations(
        app.rubrics()
            .create_rubric_from_template(req(
                &admin,
                proto::CreateRubricFromTemplateRequest { template: String::new() },
            ))
            .await,
        &["template"],
    );
}

async fn jobs_candidates_and_interviews(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let mut hiring = app.hiring();
    assert!(org.job.name.starts_with("jobs/"));
    assert_eq!(org.job.rubric, org.rubric.name);

    // External ids are unique per organisation.
    let dup_job = hiring
        .create_job(req(
            &org.admin,
            proto::CreateJobRequest {
                job: Some(proto::Job {
                    title: "Again".into(),
                    external_id: "gh-job-1".into(),
                    rubric: org.rubric.name.clone(),
                    ..Default::default()
                }),
            },
        ))
        .await;
    expect_code(dup_job, Code::AlreadyExists);
    let unknown_rubric = hiring
        .create_job(req(
            &org.admin,
            proto::CreateJobRequest {
                job: Some(proto::Job { title: "X".into(), rubric: "rubrics/nope".into(), ..Default::default() }),
            },
        ))
        .await;
    expect_code(unknown_rubric, Code::NotFound);
    expect_violations(
        hiring
            .create_job(req(
                &org.admin,
                proto::CreateJobRequest {
                    job: Some(proto::Job { title: "".into(), rubric: "jobs/x".into(), ..Default::default() }),
                },
            ))
            .await,
        &["job.title", "job.rubric"],
    );

    let ana = org.candidate(&app, "ats-1").await;
    assert_eq!(ana.display_name, "Candidate ats-1");
    assert!(!ana.erased);
    let dup = hiring
        .create_candidate(req(
            &org.admin,
            proto::CreateCandidateRequest {
                candidate: Some(proto::Candidate {
                    external_id: "ats-1".into(),
                    display_name: "Someone".into(),
                    ..Default::default()
                }),
            },
        ))
        .await;
    expect_code(dup, Code::AlreadyExists);
    expect_violations(
        hiring
            .create_candidate(req(
                &org.admin,
                proto::CreateCandidateRequest {
                    candidate: Some(proto::Candidate {
                        external_id: "".into(),
                        display_name: "".into(),
                        email: "not-an-email".into(),
                        ..Default::default()
                    }),
                },
            ))
            .await,
        &["candidate.external_id", "candidate.display_name", "candidate.email"],
    );
    let got = hiring
        .get_candidate(req(&org.admin, proto::GetCandidateRequest { name: ana.name.clone() }))
        .await
        .expect("get candidate")
        .into_inner();
    assert_eq!(got, ana);

    let interview = org.interview(&app, &ana, "ivan").await;
    assert_eq!(interview.state, State::Scheduled as i32);
    assert!(interview.scorecard.is_empty());
    assert_eq!(interview.focus_competencies, ["api_design", "collaboration"]);
    let got = hiring
        .get_interview(req(&org.admin, proto::GetInterviewRequest { name: interview.name.clone() }))
        .await
        .expect("get interview")
        .into_inner();
    assert_eq!(got, interview);

    let jobs = hiring.list_jobs(req(&org.admin, proto::ListJobsRequest::default())).await.expect("jobs").into_inner();
    assert_eq!(jobs.jobs, vec![org.job.clone()]);
    let listed = hiring
        .list_interviews(req(
            &org.admin,
            proto::ListInterviewsRequest { job: org.job.name.clone(), ..Default::default() },
        ))
        .await
        .expect("interviews")
        .into_inner();
    assert_eq!(listed.interviews, vec![interview.clone()]);
    // Each filter alone and all together (each combination is its own statement).
    for filter in [
        proto::ListInterviewsRequest { candidate: interview.candidate.clone(), ..Default::default() },
        proto::ListInterviewsRequest { interviewer: interview.interviewer.clone(), ..Default::default() },
        proto::ListInterviewsRequest {
            job: interview.job.clone(),
            candidate: interview.candidate.clone(),
            interviewer: interview.interviewer.clone(),
            ..Default::default()
        },
    ] {
        let found = hiring.list_interviews(req(&org.admin, filter)).await.expect("interviews").into_inner();
        assert_eq!(found.interviews, vec![interview.clone()]);
    }
    let other = proto::ListInterviewsRequest { interviewer: "someone-else".into(), ..Default::default() };
    let none = hiring.list_interviews(req(&org.admin, other)).await.expect("interviews").into_inner();
    assert!(none.interviews.is_empty());
}

async fn interview_rules(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let mut hiring = app.hiring();
    let make = |focus: Vec<&str>, job: &str, candidate: &str, interviewer: &str, with_time: bool| {
        proto::CreateInterviewRequest {
            interview: Some(proto::Interview {
                job: job.into(),
                candidate: candidate.into(),
                interviewer: interviewer.into(),
                focus_competencies: focus.into_iter().map(String::from).collect(),
                scheduled_time: with_time.then_some(prost_types::Timestamp { seconds: 1_800_000_000, nanos: 0 }),
                ..Default::default()
            }),
        }
    };
    expect_violations(
        hiring.create_interview(req(&org.admin, make(vec![], "", "x", "", false))).await,
        &[
            "interview.job",
            "interview.candidate",
            "interview.interviewer",
            "interview.focus_competencies",
            "interview.scheduled_time",
        ],
    );
    expect_violations(
        hiring
            .create_interview(req(
                &org.admin,
                make(vec!["api_design", "juggling", "api_design"], &org.job.name, &ana.name, "ivan", true),
            ))
            .await,
        &["interview.focus_competencies[1]", "interview.focus_competencies[2]"],
    );
    expect_code(
        hiring.create_interview(req(&org.admin, make(vec!["api_design"], "jobs/nope", &ana.name, "ivan", true))).await,
        Code::NotFound,
    );
    expect_code(
        hiring
            .create_interview(req(&org.admin, make(vec!["api_design"], &org.job.name, "candidates/nope", "ivan", true)))
            .await,
        Code::NotFound,
    );
    let listed = hiring.list_interviews(req(&org.admin, proto::ListInterviewsRequest::default())).await.expect("list");
    assert!(listed.into_inner().interviews.is_empty(), "failed creates wrote nothing");
    let long = "x".repeat(201);
    expect_violations(
        hiring
            .list_interviews(req(
                &org.admin,
                proto::ListInterviewsRequest { interviewer: long.clone(), ..Default::default() },
            ))
            .await,
        &["interviewer"],
    );
    expect_violations(
        hiring
            .list_overdue_interviews(req(
                &org.admin,
                proto::ListOverdueInterviewsRequest { interviewer: long, job: "nope".into(), ..Default::default() },
            ))
            .await,
        &["interviewer", "job"],
    );
}

async fn submit_get_and_list_scorecards(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let interview = org.interview(&app, &ana, "ivan").await;
    let ivan = token("ivan", "acme", &["interviewer"]);

    let mut submission = Org::submission(&interview, "req-1");
    submission.ratings = vec![proto::Rating { competency: "api_design".into(), score: 2, evidence: "Short.".into() }];
    let submitted = app.scorecards().submit_scorecard(req(&ivan, submission)).await.expect("submit").into_inner();
    assert!(submitted.name.starts_with("scorecards/"));
    assert_eq!(submitted.interview, interview.name);
    assert_eq!(submitted.job, org.job.name);
    assert_eq!(submitted.candidate, ana.name);
    assert_eq!(submitted.interviewer, "ivan");
    assert_eq!(submitted.author, "ivan");
    assert_eq!(submitted.revision, 1);
    assert_eq!(submitted.recommendation, Recommendation::Yes as i32);
    assert!(submitted.submit_time.is_some());
    assert_eq!(submitted.warnings.len(), 2, "short evidence and unrated focus: {:?}", submitted.warnings);

    let got = app
        .scorecards()
        .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: submitted.name.clone(), revision: 0 }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, proto::Scorecard { warnings: vec![], ..submitted.clone() });

    let interview = app
        .hiring()
        .get_interview(req(&org.admin, proto::GetInterviewRequest { name: interview.name.clone() }))
        .await
        .expect("interview")
        .into_inner();
    assert_eq!(interview.state, State::ScorecardSubmitted as i32);
    assert_eq!(interview.scorecard, submitted.name);

    let listed = app
        .scorecards()
        .list_scorecards(req(
            &org.admin,
            proto::ListScorecardsRequest { candidate: ana.name.clone(), ..Default::default() },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.scorecards, vec![got.clone()]);
    // Each filter alone and all together find it (each combination is its own
    // statement in the store).
    for filter in [
        proto::ListScorecardsRequest { job: got.job.clone(), ..Default::default() },
        proto::ListScorecardsRequest { interviewer: got.interviewer.clone(), ..Default::default() },
        proto::ListScorecardsRequest {
            job: got.job.clone(),
            candidate: got.candidate.clone(),
            interviewer: got.interviewer.clone(),
            ..Default::default()
        },
    ] {
        let found = app.scorecards().list_scorecards(req(&org.admin, filter)).await.expect("list").into_inner();
        assert_eq!(found.scorecards, vec![got.clone()]);
    }
    for filter in [
        proto::ListScorecardsRequest { interviewer: "someone-else".into(), ..Default::default() },
        proto::ListScorecardsRequest { job: "jobs/other".into(), ..Default::default() },
    ] {
        let none = app.scorecards().list_scorecards(req(&org.admin, filter)).await.expect("list").into_inner();
        assert!(none.scorecards.is_empty());
    }
}

async fn submission_validation_leaves_nothing_behind(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let interview = org.interview(&app, &ana, "ivan").await;
    let ivan = token("ivan", "acme", &["interviewer"]);
    let mut scorecards = app.scorecards();

    let base = Org::submission(&interview, "");
    let cases: Vec<(proto::SubmitScorecardRequest, Vec<&str>)> = vec![
        (
            proto::SubmitScorecardRequest { ratings: vec![rating("api_design", 5)], ..base.clone() },
            vec!["ratings[0].score"],
        ),
        (
            proto::SubmitScorecardRequest { ratings: vec![rating("api_design", 0)], ..base.clone() },
            vec!["ratings[0].score"],
        ),
        (
            proto::SubmitScorecardRequest { ratings: vec![rating("juggling", 3)], ..base.clone() },
            vec!["ratings[0].competency"],
        ),
        // In the rubric, but not a focus of this interview.
        (
            proto::SubmitScorecardRequest { ratings: vec![rating("debugging", 3)], ..base.clone() },
            vec!["ratings[0].competency"],
        ),
        (
            proto::SubmitScorecardRequest {
                ratings: vec![proto::Rating { competency: "api_design".into(), score: 3, evidence: "  ".into() }],
                ..base.clone()
            },
            vec!["ratings[0].evidence"],
        ),
        (
            proto::SubmitScorecardRequest {
                ratings: vec![proto::Rating {
                    competency: "api_design".into(),
                    score: 3,
                    evidence: "x".repeat(10_001),
                }],
                ..base.clone()
            },
            vec!["ratings[0].evidence"],
        ),
        (
            proto::SubmitScorecardRequest {
                ratings: vec![rating("api_design", 3), rating("api_design", 2)],
                ..base.clone()
            },
            vec!["ratings[1].competency"],
        ),
        (proto::SubmitScorecardRequest { ratings: vec![], ..base.clone() }, vec!["ratings"]),
        (proto::SubmitScorecardRequest { recommendation: 0, ..base.clone() }, vec!["recommendation"]),
        (proto::SubmitScorecardRequest { recommendation: 99, ..base.clone() }, vec!["recommendation"]),
        (proto::SubmitScorecardRequest { summary: "y".repeat(10_001), ..base.clone() }, vec!["summary"]),
        (proto::SubmitScorecardRequest { summary: "nul\0byte".into(), ..base.clone() }, vec!["summary"]),
        (proto::SubmitScorecardRequest { request_id: "has spaces".into(), ..base.clone() }, vec!["request_id"]),
        // Every problem at once.
        (
            proto::SubmitScorecardRequest {
                ratings: vec![rating("juggling", 9)],
                recommendation: 0,
                request_id: "bad id".into(),
                ..base.clone()
            },
            vec!["ratings[0].competency", "ratings[0].score", "recommendation", "request_id"],
        ),
    ];
    for (request, fields) in cases {
        expect_violations(scorecards.submit_scorecard(req(&ivan, request)).await, &fields);
    }
    expect_violations(
        scorecards
            .submit_scorecard(req(&ivan, proto::SubmitScorecardRequest { interview: "".into(), ..base.clone() }))
            .await,
        &["interview"],
    );
    expect_code(
        scorecards
            .submit_scorecard(req(&ivan, proto::SubmitScorecardRequest { interview: "interviews/nope".into(), ..base }))
            .await,
        Code::NotFound,
    );

    // Nothing half-written: no scorecard, interview still scheduled.
    let listed =
        scorecards.list_scorecards(req(&org.admin, proto::ListScorecardsRequest::default())).await.expect("list");
    assert!(listed.into_inner().scorecards.is_empty());
    let interview = app
        .hiring()
        .get_interview(req(&org.admin, proto::GetInterviewRequest { name: interview.name.clone() }))
        .await
        .expect("interview")
        .into_inner();
    assert_eq!(interview.state, State::Scheduled as i32);
}

async fn second_submission_is_already_exists(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let interview = org.interview(&app, &ana, "ivan").await;
    let first = org.submit(&app, &interview).await;
    let ivan = token("ivan", "acme", &["interviewer"]);
    for request_id in ["", "another-key"] {
        let again = app.scorecards().submit_scorecard(req(&ivan, Org::submission(&interview, request_id))).await;
        let status = expect_code(again, Code::AlreadyExists);
        assert!(status.message().contains("AmendScorecard"), "{status:?}");
    }
    let got = app
        .scorecards()
        .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: first.name.clone(), revision: 0 }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.revision, 1);
}

async fn idempotent_retries_and_key_reuse(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let interview = org.interview(&app, &ana, "ivan").await;
    let integration = token("ats", "acme", &["integration"]);
    let mut scorecards = app.scorecards();
    let request = Org::submission(&interview, "9f1c2a7e-retry");
    let first = scorecards.submit_scorecard(req(&integration, request.clone())).await.expect("first").into_inner();
    let retry = scorecards.submit_scorecard(req(&integration, request.clone())).await.expect("retry").into_inner();
    assert_eq!(first, retry);
    assert_eq!(first.author, "ats", "an integration submits on the interviewer's behalf");
    assert_eq!(first.interviewer, "ivan");

    // The same key with different content is a client bug, not a retry.
    let mut changed = request;
    changed.summary = "Something else".into();
    expect_violations(scorecards.submit_scorecard(req(&integration, changed)).await, &["request_id"]);

    // A retry after an amendment still answers with what was first acknowledged.
    let amended = scorecards
        .amend_scorecard(req(
            &integration,
            proto::AmendScorecardRequest {
                name: first.name.clone(),
                ratings: vec![rating("api_design", 1)],
                recommendation: Recommendation::No as i32,
                reason: "Mixed up candidates".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("amend")
        .into_inner();
    assert_eq!(amended.revision, 2);
    let retry = scorecards
        .submit_scorecard(req(&integration, Org::submission(&interview, "9f1c2a7e-retry")))
        .await
        .expect("late retry")
        .into_inner();
    assert_eq!(retry, first);
}

async fn concurrent_retries_create_exactly_one_scorecard(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let interview = org.interview(&app, &ana, "ivan").await;
    let ivan = token("ivan", "acme", &["interviewer"]);
    let request = Org::submission(&interview, "concurrent-key");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut client = app.scorecards();
        let (ivan, request) = (ivan.clone(), request.clone());
        tasks.push(tokio::spawn(async move { client.submit_scorecard(req(&ivan, request)).await }));
    }
    let mut names = std::collections::HashSet::new();
    for task in tasks {
        let scorecard = task.await.expect("task").expect("every retry succeeds").into_inner();
        names.insert(scorecard.name);
    }
    assert_eq!(names.len(), 1, "all retries return the same scorecard");
    let listed = app
        .scorecards()
        .list_scorecards(req(&org.admin, proto::ListScorecardsRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.scorecards.len(), 1);

    // Concurrent submissions without a key: exactly one wins, the rest ALREADY_EXISTS.
    let second = org.interview(&app, &ana, "ivan").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut client = app.scorecards();
        let (ivan, request) = (ivan.clone(), Org::submission(&second, ""));
        tasks.push(tokio::spawn(async move { client.submit_scorecard(req(&ivan, request)).await }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ok += 1,
            Err(s) => assert_eq!(s.code(), Code::AlreadyExists, "{s:?}"),
        }
    }
    assert_eq!(ok, 1);

    // Many first submissions at once, some for interviews that already have
    // one: they share group-committed transactions, and each succeeds or fails
    // on its own, with exactly one event per scorecard created.
    let mut interviews = Vec::new();
    for i in 0..24 {
        let candidate = org.candidate(&app, &format!("ats-batch-{i}")).await;
        interviews.push(org.interview(&app, &candidate, "ivan").await);
    }
    let mut tasks = Vec::new();
    for (i, interview) in interviews.iter().enumerate() {
        // Every third interview is submitted twice, without a request id.
        for _ in 0..(1 + usize::from(i % 3 == 0)) {
            let mut client = app.scorecards();
            let (ivan, request) = (ivan.clone(), Org::submission(interview, ""));
            tasks.push(tokio::spawn(async move { client.submit_scorecard(req(&ivan, request)).await }));
        }
    }
    let (mut created, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => created += 1,
            Err(s) => {
                assert_eq!(s.code(), Code::AlreadyExists, "{s:?}");
                refused += 1;
            }
        }
    }
    assert_eq!((created, refused), (24, 8));
    let events = app
        .events()
        .list_events(req(
            &org.admin,
            proto::ListEventsRequest {
                event_types: vec!["scorecard.submitted".into()],
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .expect("events")
        .into_inner()
        .events;
    assert_eq!(events.len(), 2 + 24, "one event per scorecard created, none for the refused");
    let mut resources: Vec<&str> = events.iter().map(|e| e.resource.as_str()).collect();
    resources.sort_unstable();
    resources.dedup();
    assert_eq!(resources.len(), 26);
}

async fn amendments_keep_every_revision(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let interview = org.interview(&app, &ana, "ivan").await;
    let original = org.submit(&app, &interview).await;
    let ivan = token("ivan", "acme", &["interviewer"]);
    let mut scorecards = app.scorecards();
    let amend = |revision: i32, reason: &str, score: i32| proto::AmendScorecardRequest {
        name: original.name.clone(),
        ratings: vec![rating("api_design", score), rating("collaboration", 2)],
        recommendation: Recommendation::No as i32,
        summary: "Revisited my notes.".into(),
        reason: reason.into(),
        revision,
    };

    expect_violations(scorecards.amend_scorecard(req(&ivan, amend(0, "", 2))).await, &["reason"]);
    expect_violations(scorecards.amend_scorecard(req(&ivan, amend(0, "typo", 7))).await, &["ratings[0].score"]);
    let second =
        scorecards.amend_scorecard(req(&ivan, amend(1, "Misread my notes", 2))).await.expect("amend").into_inner();
    assert_eq!(second.revision, 2);
    assert_eq!(second.amend_reason, "Misread my notes");
    assert_eq!(second.submit_time, original.submit_time);
    assert_eq!(second.ratings[0].score, 2);
    // Stale optimistic check.
    expect_code(scorecards.amend_scorecard(req(&ivan, amend(1, "again", 1))).await, Code::Aborted);
    let third =
        scorecards.amend_scorecard(req(&ivan, amend(0, "Second thoughts", 1))).await.expect("amend").into_inner();
    assert_eq!(third.revision, 3);

    for (revision, score, reason) in [(1, 3, ""), (2, 2, "Misread my notes"), (3, 1, "Second thoughts")] {
        let got = scorecards
            .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: original.name.clone(), revision }))
            .await
            .expect("revision")
            .into_inner();
        assert_eq!(got.revision, revision);
        assert_eq!(got.ratings[0].score, score);
        assert_eq!(got.amend_reason, reason);
    }
    let current = scorecards
        .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: original.name.clone(), revision: 0 }))
        .await
        .expect("current")
        .into_inner();
    assert_eq!(current.revision, 3);
    expect_code(
        scorecards
            .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: original.name.clone(), revision: 4 }))
            .await,
        Code::NotFound,
    );
    // Another interviewer may not amend it; a recruiter may not either.
    let olga = token("olga", "acme", &["interviewer"]);
    expect_code(scorecards.amend_scorecard(req(&olga, amend(0, "mine now", 1))).await, Code::PermissionDenied);
    let rita = token("rita", "acme", &["recruiter"]);
    expect_code(scorecards.amend_scorecard(req(&rita, amend(0, "mine now", 1))).await, Code::PermissionDenied);
}

async fn blind_review(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let ivan_interview = org.interview(&app, &ana, "ivan").await;
    let olga_interview = org.interview(&app, &ana, "olga").await;
    let ivans = org.submit(&app, &ivan_interview).await;
    let olga = token("olga", "acme", &["interviewer"]);
    let mut scorecards = app.scorecards();
    let get = |name: &str| proto::GetScorecardRequest { name: name.into(), revision: 0 };

    // Before submitting her own, Olga sees nothing of Ivan's.
    let hidden = expect_code(scorecards.get_scorecard(req(&olga, get(&ivans.name))).await, Code::PermissionDenied);
    assert!(hidden.message().contains("blind review"));
    let listed = scorecards
        .list_scorecards(req(&olga, proto::ListScorecardsRequest { candidate: ana.name.clone(), ..Default::default() }))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.scorecards.is_empty());

    let olgas = org.submit(&app, &olga_interview).await;
    let seen = scorecards.get_scorecard(req(&olga, get(&ivans.name))).await.expect("now visible").into_inner();
    assert_eq!(seen.name, ivans.name);
    let listed = scorecards
        .list_scorecards(req(&olga, proto::ListScorecardsRequest::default()))
        .await
        .expect("list")
        .into_inner();
    let names: Vec<_> = listed.scorecards.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&ivans.name) && names.contains(&olgas.name));

    // A third interviewer of another candidate still sees neither.
    let bob = org.candidate(&app, "ats-2").await;
    let _ = org.interview(&app, &bob, "pete").await;
    let pete = token("pete", "acme", &["interviewer"]);
    expect_code(scorecards.get_scorecard(req(&pete, get(&ivans.name))).await, Code::PermissionDenied);
    let listed = scorecards
        .list_scorecards(req(&pete, proto::ListScorecardsRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.scorecards.is_empty());
    // Recruiters are not bound by blind review.
    let rita = token("rita", "acme", &["recruiter"]);
    scorecards.get_scorecard(req(&rita, get(&ivans.name))).await.expect("recruiter reads");
}

async fn interviewers_act_only_on_their_own_interviews(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let bob = org.candidate(&app, "ats-2").await;
    let ivans = org.interview(&app, &ana, "ivan").await;
    let olgas = org.interview(&app, &bob, "olga").await;
    let ivan = token("ivan", "acme", &["interviewer"]);

    expect_code(
        app.scorecards().submit_scorecard(req(&ivan, Org::submission(&olgas, ""))).await,
        Code::PermissionDenied,
    );
    // Permission comes before validation: an invalid submission for someone
    // else's interview is refused, not explained.
    let mut invalid = Org::submission(&olgas, "");
    invalid.ratings.clear();
    expect_code(app.scorecards().submit_scorecard(req(&ivan, invalid)).await, Code::PermissionDenied);

    let mut hiring = app.hiring();
    hiring.get_interview(req(&ivan, proto::GetInterviewRequest { name: ivans.name.clone() })).await.expect("own");
    expect_code(
        hiring.get_interview(req(&ivan, proto::GetInterviewRequest { name: olgas.name.clone() })).await,
        Code::PermissionDenied,
    );
    let mine =
        hiring.list_interviews(req(&ivan, proto::ListInterviewsRequest::default())).await.expect("list").into_inner();
    assert_eq!(mine.interviews, vec![ivans.clone()]);
    expect_code(
        hiring
            .list_interviews(req(
                &ivan,
                proto::ListInterviewsRequest { interviewer: "olga".into(), ..Default::default() },
            ))
            .await,
        Code::PermissionDenied,
    );
    hiring
        .get_candidate(req(&ivan, proto::GetCandidateRequest { name: ana.name.clone() }))
        .await
        .expect("own candidate");
    expect_code(
        hiring.get_candidate(req(&ivan, proto::GetCandidateRequest { name: bob.name.clone() })).await,
        Code::PermissionDenied,
    );
    let candidates =
        hiring.list_candidates(req(&ivan, proto::ListCandidatesRequest::default())).await.expect("list").into_inner();
    assert_eq!(candidates.candidates, vec![ana]);
}

async fn erasure_removes_personal_data_everywhere(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let bob = org.candidate(&app, "ats-2").await;
    let interview = org.interview(&app, &ana, "ivan").await;
    let kept_interview = org.interview(&app, &bob, "ivan").await;
    let scorecard = org.submit(&app, &interview).await;
    let kept = org.submit(&app, &kept_interview).await;
    let ivan = token("ivan", "acme", &["interviewer"]);
    let mut scorecards = app.scorecards();
    scorecards
        .amend_scorecard(req(
            &ivan,
            proto::AmendScorecardRequest {
                name: scorecard.name.clone(),
                ratings: vec![rating("api_design", 2)],
                recommendation: Recommendation::No as i32,
                summary: "Ana mentioned her previous employer".into(),
                reason: "Ana asked me to correct it".into(),
                revision: 0,
            },
        ))
        .await
        .expect("amend");

    let erased = app
        .hiring()
        .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name: ana.name.clone() }))
        .await
        .expect("erase")
        .into_inner();
    assert!(erased.erased);
    assert!(erased.display_name.is_empty() && erased.email.is_empty());
    assert!(!erased.external_id.contains("ats-1"));
    // Erasing twice is harmless.
    app.hiring()
        .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name: ana.name.clone() }))
        .await
        .expect("erase again");

    for revision in [1, 2] {
        let s = scorecards
            .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: scorecard.name.clone(), revision }))
            .await
            .expect("scorecard kept")
            .into_inner();
        assert!(s.ratings.iter().all(|r| r.evidence.is_empty()), "evidence erased in revision {revision}");
        assert!(s.summary.is_empty() && s.amend_reason.is_empty(), "free text erased in revision {revision}");
        assert!(!s.ratings.is_empty(), "scores stay for calibration");
    }
    // Other candidates are untouched.
    let other = scorecards
        .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: kept.name.clone(), revision: 0 }))
        .await
        .expect("other")
        .into_inner();
    assert_eq!(other, proto::Scorecard { warnings: vec![], ..kept });
    // The external id is free again, and no new text about the erased person is accepted.
    org.candidate(&app, "ats-1").await;
    expect_code(
        scorecards
            .amend_scorecard(req(
                &ivan,
                proto::AmendScorecardRequest {
                    name: scorecard.name.clone(),
                    ratings: vec![rating("api_design", 2)],
                    recommendation: Recommendation::No as i32,
                    reason: "more".into(),
                    ..Default::default()
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    expect_code(
        app.hiring()
            .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name: "candidates/nope".into() }))
            .await,
        Code::NotFound,
    );
}

async fn text_round_trips_byte_exact(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let tricky = [
        "Robert'); DROP TABLE scorecards;--",
        "She said \"it's fine\" \\ then paused",
        "Explained trade-offs clearly 👍🏽 — résumé naïve façade",
        "設計について明確に説明した。",
        "شرح المفاضلات بوضوح",
        "Объяснил компромиссы\nна двух строках\tс табуляцией",
        "%s %d {0} ${x} $1 ? :name",
    ];
    let mut ids = Vec::new();
    for (n, text) in tricky.iter().enumerate() {
        let c = app
            .hiring()
            .create_candidate(req(
                &org.admin,
                proto::CreateCandidateRequest {
                    candidate: Some(proto::Candidate {
                        external_id: format!("{text}-{n}"),
                        display_name: text.to_string(),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .expect("create")
            .into_inner();
        assert_eq!(c.display_name, *text);
        ids.push(c);
    }
    let interview = org.interview(&app, &ids[0], "ivan").await;
    let ivan = token("ivan", "acme", &["interviewer"]);
    let submission = proto::SubmitScorecardRequest {
        interview: interview.name.clone(),
        ratings: vec![
            proto::Rating { competency: "api_design".into(), score: 3, evidence: tricky.join("\n") },
            proto::Rating { competency: "collaboration".into(), score: 2, evidence: tricky[3].into() },
        ],
        recommendation: Recommendation::StrongYes as i32,
        summary: tricky[2].into(),
        request_id: String::new(),
    };
    let s = app.scorecards().submit_scorecard(req(&ivan, submission.clone())).await.expect("submit").into_inner();
    let got = app
        .scorecards()
        .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: s.name, revision: 0 }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.ratings, submission.ratings);
    assert_eq!(got.summary.as_bytes(), submission.summary.as_bytes());
    for c in ids {
        let back = app
            .hiring()
            .get_candidate(req(&org.admin, proto::GetCandidateRequest { name: c.name.clone() }))
            .await
            .expect("get")
            .into_inner();
        assert_eq!(back.display_name.as_bytes(), c.display_name.as_bytes());
        assert_eq!(back.external_id.as_bytes(), c.external_id.as_bytes());
    }
}

async fn pagination_visits_every_item_once(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let mut created = std::collections::HashSet::new();
    for n in 0..23 {
        created.insert(org.candidate(&app, &format!("ats-{n}")).await.name);
    }
    let mut seen = Vec::new();
    let mut token_ = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .hiring()
            .list_candidates(req(
                &org.admin,
                proto::ListCandidatesRequest { page_size: 5, page_token: token_.clone(), ..Default::default() },
            ))
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.candidates.len() <= 5);
        seen.extend(page.candidates.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token_ = page.next_page_token;
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23, "no item twice");
    assert_eq!(seen.iter().cloned().collect::<std::collections::HashSet<_>>(), created, "every item once");

    // Scorecards, with a filter, page through exactly the matching ones.
    let ana = org.candidate(&app, "ana").await;
    for n in 0..7 {
        let interviewer = format!("interviewer-{n}");
        let i = org.interview(&app, &ana, &interviewer).await;
        org.submit(&app, &i).await;
    }
    let mut seen = std::collections::HashSet::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .scorecards()
            .list_scorecards(req(
                &org.admin,
                proto::ListScorecardsRequest {
                    page_size: 3,
                    page_token: page_token.clone(),
                    candidate: ana.name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("page")
            .into_inner();
        for s in page.scorecards {
            assert_eq!(s.ratings.len(), 2, "ratings travel with each scorecard");
            assert!(seen.insert(s.name));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        // A token is bound to its list: reusing it with other filters is refused.
        let misuse = app
            .scorecards()
            .list_scorecards(req(
                &org.admin,
                proto::ListScorecardsRequest { page_token: page.next_page_token.clone(), ..Default::default() },
            ))
            .await;
        expect_violations(misuse, &["page_token"]);
        page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), 7);

    expect_violations(
        app.hiring()
            .list_candidates(req(&org.admin, proto::ListCandidatesRequest { page_size: -1, ..Default::default() }))
            .await,
        &["page_size"],
    );
    expect_violations(
        app.hiring()
            .list_candidates(req(
                &org.admin,
                proto::ListCandidatesRequest { page_size: 5, page_token: "garbage!".into(), ..Default::default() },
            ))
            .await,
        &["page_token"],
    );
    // An enormous page size is capped, not refused.
    let all = app
        .hiring()
        .list_candidates(req(&org.admin, proto::ListCandidatesRequest { page_size: i32::MAX, ..Default::default() }))
        .await
        .expect("capped")
        .into_inner();
    assert_eq!(all.candidates.len(), 24);
}

async fn overdue_interviews(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "ats-1").await;
    let overdue = org.interview(&app, &ana, "ivan").await;
    let done = org.interview(&app, &ana, "olga").await;
    org.submit(&app, &done).await;
    let future = app
        .hiring()
        .create_interview(req(
            &org.admin,
            proto::CreateInterviewRequest {
                interview: Some(proto::Interview {
                    job: org.job.name.clone(),
                    candidate: ana.name.clone(),
                    interviewer: "ivan".into(),
                    focus_competencies: vec!["api_design".into()],
                    scheduled_time: Some(prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 }),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("future interview")
        .into_inner();
    let listed = app
        .hiring()
        .list_overdue_interviews(req(
            &org.admin,
            proto::ListOverdueInterviewsRequest { job: org.job.name.clone(), ..Default::default() },
        ))
        .await
        .expect("overdue")
        .into_inner();
    let names: Vec<_> = listed.interviews.iter().map(|i| i.name.clone()).collect();
    assert_eq!(names, vec![overdue.name.clone()]);
    assert!(!names.contains(&future.name));
    let ivan = token("ivan", "acme", &["interviewer"]);
    let mine = app
        .hiring()
        .list_overdue_interviews(req(&ivan, proto::ListOverdueInterviewsRequest::default()))
        .await
        .expect("own overdue")
        .into_inner();
    assert_eq!(mine.interviews.len(), 1);
    let olga = token("olga", "acme", &["interviewer"]);
    let none = app
        .hiring()
        .list_overdue_interviews(req(&olga, proto::ListOverdueInterviewsRequest::default()))
        .await
        .expect("olga")
        .into_inner();
    assert!(none.interviews.is_empty());

    // Paging in schedule order visits each overdue interview once.
    for n in 0..5 {
        org.interview(&app, &ana, &format!("late-{n}")).await;
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .hiring()
            .list_overdue_interviews(req(
                &org.admin,
                proto::ListOverdueInterviewsRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("page")
            .into_inner();
        seen.extend(page.interviews.into_iter().map(|i| i.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(seen.iter().collect::<std::collections::HashSet<_>>().len(), 6);
}

async fn oversized_messages_are_refused(app: TestApp) {
    let admin = token("root", "acme", &["admin"]);
    let mut huge = sample_rubric("Huge");
    huge.competencies[0].description = "x".repeat(5 * 1024 * 1024);
    let result = app.rubrics().create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(huge) })).await;
    let status = result.expect_err("a 5 MiB message is refused");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "unexpected status for an oversized message: {status:?}"
    );
    // A large but legal field is refused by validation with its field named.
    let mut long = sample_rubric("Long");
    long.competencies[0].description = "x".repeat(4_001);
    expect_violations(
        app.rubrics().create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(long) })).await,
        &["rubric.competencies[0].description"],
    );
}

async fn health_and_reflection_need_no_token(app: TestApp) {
    use tonic_health::pb::health_client::HealthClient;
    let mut health = HealthClient::new(app.channel.clone());
    let overall = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health without a token")
        .into_inner();
    assert_eq!(overall.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let scorecards = health
        .check(tonic_health::pb::HealthCheckRequest { service: "scorecard.v1.ScorecardService".into() })
        .await
        .expect("service health")
        .into_inner();
    assert_eq!(scorecards.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream =
        reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.expect("reflection").into_inner();
    let response = stream.message().await.expect("message").expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for service in ["scorecard.v1.RubricService", "scorecard.v1.ScorecardService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == service), "{service} missing from {names:?}");
    }

    // Everything else needs a token.
    let anonymous = app.rubrics().list_rubrics(proto::ListRubricsRequest::default()).await;
    expect_code(anonymous, Code::Unauthenticated);
}

//! Jobs, candidates and interviews end to end, on SQLite and PostgreSQL:
//! create, read and list, the interview rules, overdue interviews, and erasure
//! of a candidate's personal data everywhere.

mod common;

use common::{Org, TestApp, amendment, expect_code, expect_violations, rating, req, token};
use scorecard::proto::{self, Recommendation, interview::State};
use tonic::Code;

on_both_databases!(
    jobs_candidates_and_interviews,
    interview_rules,
    overdue_interviews,
    erasure_removes_personal_data_everywhere,
);

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
        scorecards.amend_scorecard(req(&ivan, amendment(&scorecard.name, vec![rating("api_design", 2)], "more"))).await,
        Code::FailedPrecondition,
    );
    expect_code(
        app.hiring()
            .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name: "candidates/nope".into() }))
            .await,
        Code::NotFound,
    );
}

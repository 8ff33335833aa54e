//! Scorecards end to end, on SQLite and PostgreSQL: submit, read and list,
//! validation that leaves nothing behind, idempotent retries, amendments with
//! every revision kept, blind review, interviewers confined to their own
//! interviews, text kept byte for byte.

mod common;

use common::{Org, TestApp, amend, amendment, expect_code, expect_violations, rating, req, token};
use scorecard::proto::{self, Recommendation, interview::State};
use tonic::Code;

on_both_databases!(
    submit_get_and_list_scorecards,
    submission_validation_leaves_nothing_behind,
    second_submission_is_already_exists,
    idempotent_retries_and_key_reuse,
    concurrent_retries_create_exactly_one_scorecard,
    amendments_keep_every_revision,
    blind_review,
    interviewers_act_only_on_their_own_interviews,
    text_round_trips_byte_exact,
);

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
    let amended =
        amend(&app, &integration, amendment(&first.name, vec![rating("api_design", 1)], "Mixed up candidates")).await;
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
    // A list page is read another way (gathered as JSON by the database):
    // the same bytes, the ratings in the order given.
    let listed = app
        .scorecards()
        .list_scorecards(req(&org.admin, proto::ListScorecardsRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.scorecards, vec![got]);
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

//! Decisions over real gRPC, on SQLite and PostgreSQL: a job's hiring bar
//! (CreateJob, UpdateJob with a field mask), `p_above_bar` and tiers in the
//! ranking, CompareCandidates' matrix agreeing with the tiers, PlanInterviews'
//! suggestions and their rules, and every bad request refused with its field
//! and nothing changed.

mod common;

use common::{Org, TestApp, expect_code, expect_violations, rate, req, token};
use scorecard::proto;
use tonic::Code;

on_both_databases!(bar_probabilities_tiers_and_comparisons, interview_plans, bad_decision_requests_change_nothing);

/// Ten candidates, each rated by three of four interviewers: two strong, two
/// weak, the rest in between.
async fn panel(app: &TestApp, org: &Org) -> Vec<proto::Candidate> {
    let raters = ["ivan", "judy", "kemal", "lena"];
    let scores = [4, 4, 1, 1, 3, 2, 3, 2, 3, 2];
    let mut candidates = Vec::new();
    for (i, score) in scores.iter().enumerate() {
        let c = org.candidate(app, &format!("ats-{i}")).await;
        for k in 0..3 {
            let rater = raters[(i + k) % raters.len()];
            // Interviewers disagree by a point now and then, as they do.
            let wobble = ((i * 7 + k * 5) % 4) as i32 - 1;
            let s = if wobble.abs() == 1 { score + wobble } else { *score };
            rate(app, org, &c, rater, s.clamp(1, 4)).await;
        }
        candidates.push(c);
    }
    candidates
}

/// Sets (or with `None` clears) the job's hiring bar through UpdateJob.
async fn set_bar(app: &TestApp, org: &Org, bar: Option<f64>) -> proto::Job {
    app.hiring()
        .update_job(req(
            &org.admin,
            proto::UpdateJobRequest {
                job: Some(proto::Job { name: org.job.name.clone(), hiring_bar: bar, ..Default::default() }),
                update_mask: mask(&["hiring_bar"]),
            },
        ))
        .await
        .expect("update the bar")
        .into_inner()
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() })
}

async fn ranking(app: &TestApp, org: &Org) -> proto::Ranking {
    let recruiter = token("rita", &org.name, &["recruiter"]);
    app.calibration()
        .get_ranking(req(
            &recruiter,
            proto::GetRankingRequest { job: org.job.name.clone(), page_size: 100, ..Default::default() },
        ))
        .await
        .expect("ranking")
        .into_inner()
}

async fn bar_probabilities_tiers_and_comparisons(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    panel(&app, &org).await;
    let before = ranking(&app, &org).await;
    assert_eq!(before.hiring_bar, None);
    assert!(before.entries.iter().all(|e| e.p_above_bar.is_none()), "no bar, no probability");

    // Set the bar by mask; the job says so, and so does GetJob.
    let updated = set_bar(&app, &org, Some(2.5)).await;
    assert_eq!(updated.hiring_bar, Some(2.5));
    assert_eq!(updated.title, org.job.title, "a field outside the mask is kept");
    let micros = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(micros(&updated.update_time) > micros(&org.job.update_time));
    let read = app
        .hiring()
        .get_job(req(&org.admin, proto::GetJobRequest { name: org.job.name.clone() }))
        .await
        .expect("get job")
        .into_inner();
    assert_eq!(read.hiring_bar, Some(2.5));

    let ranked = ranking(&app, &org).await;
    assert_eq!(ranked.hiring_bar, Some(2.5));
    assert_eq!(ranked.entries.len(), 10);
    let p: Vec<f64> = ranked.entries.iter().map(|e| e.p_above_bar.expect("a probability with a bar")).collect();
    assert!(p.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(p[0] > 0.9 && p[9] < 0.1, "the strong clear the bar, the weak do not: {p:?}");
    for e in &ranked.entries {
        // The interval and the probability tell one story.
        let p = e.p_above_bar.unwrap_or_default();
        if e.score_lower > 2.5 {
            assert!(p > 0.9, "{e:?}");
        }
        if e.score_upper < 2.5 {
            assert!(p < 0.1, "{e:?}");
        }
    }
    // Tiers start at 1 and never skip or go back.
    assert_eq!(ranked.entries[0].tier, 1);
    for w in ranked.entries.windows(2) {
        assert!(w[1].tier == w[0].tier || w[1].tier == w[0].tier + 1, "{:?} then {:?}", w[0], w[1]);
    }
    assert!(ranked.entries.last().map_or(0, |e| e.tier) >= 2, "strong and weak are in different tiers");

    // The comparison matrix, in the ranking's order: complementary, 0.5 on
    // the diagonal, and a tier boundary exactly where a neighbour is above
    // the next with probability 0.9 or more.
    let names: Vec<String> = ranked.entries.iter().map(|e| e.candidate.clone()).collect();
    let recruiter = token("rita", &org.name, &["recruiter"]);
    let matrix = app
        .calibration()
        .compare_candidates(req(
            &recruiter,
            proto::CompareCandidatesRequest { job: org.job.name.clone(), candidates: names.clone() },
        ))
        .await
        .expect("compare")
        .into_inner();
    assert_eq!(matrix.candidates, names);
    assert_eq!(matrix.rows.len(), names.len());
    for (i, row) in matrix.rows.iter().enumerate() {
        assert_eq!(row.candidate, names[i]);
        assert_eq!(row.p_above.len(), names.len());
        assert_eq!(row.p_above[i], 0.5);
        for (j, p) in row.p_above.iter().enumerate() {
            assert!((p + matrix.rows[j].p_above[i] - 1.0).abs() < 1e-9, "P(a>b) + P(b>a) = 1");
        }
    }
    assert!(matrix.rows[0].p_above[9] > 0.95, "the best is above the worst");
    for i in 1..names.len() {
        let p = matrix.rows[i - 1].p_above[i];
        let boundary = ranked.entries[i].tier != ranked.entries[i - 1].tier;
        assert_eq!(boundary, p >= 0.9, "between {} and {}: p {p}", i - 1, i);
        assert!(p >= 0.5 - 1e-9, "the ranking's order is the more likely one: {p}");
    }

    // Raising the bar moves candidates below p = 0.5: `ranking.changed` names them.
    let above: Vec<String> =
        ranked.entries.iter().filter(|e| e.p_above_bar.unwrap_or(0.0) >= 0.5).map(|e| e.candidate.clone()).collect();
    wait_for_ranking_event(&app, &org, |p| field(p, "hiring_bar") == Some(2.5)).await;
    set_bar(&app, &org, Some(3.9)).await;
    let raised = ranking(&app, &org).await;
    let now_below: Vec<String> = raised
        .entries
        .iter()
        .filter(|e| e.p_above_bar.unwrap_or(1.0) < 0.5 && above.contains(&e.candidate))
        .map(|e| e.candidate.clone())
        .collect();
    assert!(!now_below.is_empty(), "a bar near the top leaves fewer above it");
    let payload = wait_for_ranking_event(&app, &org, |p| field(p, "hiring_bar") == Some(3.9)).await;
    let crossings = &payload.fields["bar_crossings"];
    let named: Vec<String> = match &crossings.kind {
        Some(prost_types::value::Kind::ListValue(list)) => list
            .values
            .iter()
            .filter_map(|v| match &v.kind {
                Some(prost_types::value::Kind::StructValue(s)) => match &s.fields["candidate"].kind {
                    Some(prost_types::value::Kind::StringValue(c)) => Some(c.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        other => panic!("bar_crossings is a list: {other:?}"),
    };
    let mut named_sorted = named.clone();
    named_sorted.sort();
    let mut want = now_below.clone();
    want.sort();
    assert_eq!(named_sorted, want, "the event names exactly who crossed p = 0.5");

    // No mask: the fields set are updated; the title too.
    let renamed = app
        .hiring()
        .update_job(req(
            &org.admin,
            proto::UpdateJobRequest {
                job: Some(proto::Job {
                    name: org.job.name.clone(),
                    title: "Platform Engineer".into(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .expect("rename")
        .into_inner();
    assert_eq!((renamed.title.as_str(), renamed.hiring_bar), ("Platform Engineer", Some(3.9)));
    // A masked field left unset clears it.
    let cleared = set_bar(&app, &org, None).await;
    assert_eq!(cleared.hiring_bar, None);
    assert!(ranking(&app, &org).await.entries.iter().all(|e| e.p_above_bar.is_none()));

    // A job created with a bar ranks against it from the start.
    let job = app
        .hiring()
        .create_job(req(
            &org.admin,
            proto::CreateJobRequest {
                job: Some(proto::Job {
                    title: "SRE".into(),
                    rubric: org.rubric.name.clone(),
                    hiring_bar: Some(3.0),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("create job with a bar")
        .into_inner();
    assert_eq!(job.hiring_bar, Some(3.0));

    // The changes are events integrators can follow.
    let events = app
        .events()
        .list_events(req(&org.admin, proto::ListEventsRequest { page_size: 1000, ..Default::default() }))
        .await
        .expect("events")
        .into_inner();
    let updates = events.events.iter().filter(|e| e.r#type == "job.updated").count();
    assert_eq!(updates, 4, "one job.updated per UpdateJob");
}

/// A number field of an event payload.
fn field(payload: &prost_types::Struct, name: &str) -> Option<f64> {
    match payload.fields.get(name)?.kind {
        Some(prost_types::value::Kind::NumberValue(n)) => Some(n),
        _ => None,
    }
}

/// The payload of the first `ranking.changed` of the job that `matches`,
/// waiting for it (derived events are published within about a second).
async fn wait_for_ranking_event(
    app: &TestApp,
    org: &Org,
    matches: impl Fn(&prost_types::Struct) -> bool,
) -> prost_types::Struct {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let events = app
            .events()
            .list_events(req(
                &org.admin,
                proto::ListEventsRequest {
                    event_types: vec!["ranking.changed".into()],
                    page_size: 1000,
                    ..Default::default()
                },
            ))
            .await
            .expect("events")
            .into_inner();
        let found = events
            .events
            .into_iter()
            .filter(|e| e.resource == org.job.name)
            .filter_map(|e| e.payload)
            .find(|p| matches(p));
        if let Some(p) = found {
            return p;
        }
        assert!(std::time::Instant::now() < deadline, "no matching ranking.changed within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn interview_plans(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let candidates = panel(&app, &org).await;
    // The bar right at a middle candidate's score: they, at least, are undecided.
    let bar = (ranking(&app, &org).await.entries[4].score * 100.0).round() / 100.0;
    set_bar(&app, &org, Some(bar)).await;
    // The weakest candidate was rejected: settled, so never planned for by default.
    let recruiter = token("rita", &org.name, &["recruiter"]);
    app.hiring()
        .record_decision(req(
            &recruiter,
            proto::RecordDecisionRequest {
                job: org.job.name.clone(),
                candidate: candidates[3].name.clone(),
                outcome: proto::Outcome::Rejected as i32,
                reason: "Below the bar on both competencies.".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("decide");
    let plan = |slots: i32, max: i32, interviewers: Vec<String>| proto::PlanInterviewsRequest {
        job: org.job.name.clone(),
        slots,
        max_per_interviewer: max,
        interviewers,
        ..Default::default()
    };
    let planned =
        app.calibration().plan_interviews(req(&recruiter, plan(4, 1, Vec::new()))).await.expect("plan").into_inner();
    assert_eq!((planned.decision_line, planned.shortlist), (bar, false));
    assert!(!planned.suggestions.is_empty() && planned.suggestions.len() <= 4, "{planned:?}");
    assert!(planned.expected_wrong_decisions_after < planned.expected_wrong_decisions_before);
    assert!(planned.expected_wrong_decisions_after >= 0.0);
    let gained: f64 = planned.suggestions.iter().map(|s| s.expected_gain).sum();
    let drop = planned.expected_wrong_decisions_before - planned.expected_wrong_decisions_after;
    assert!((gained - drop).abs() < 1e-6, "the suggestions' gains are the expected drop");
    let competencies = ["api_design", "debugging", "explaining_tradeoffs", "collaboration"];
    let mut seen = std::collections::HashSet::new();
    for s in &planned.suggestions {
        assert!(s.expected_gain > 0.0 && !s.reason.is_empty(), "{s:?}");
        assert_ne!(s.candidate, candidates[3].name, "a settled candidate is not planned for");
        assert!(seen.insert(s.interviewer.clone()), "at most one interview each: {planned:?}");
        assert!(!s.competencies.is_empty() && s.competencies.iter().all(|c| competencies.contains(&c.as_str())));
        // Never an interviewer already on the candidate's panel.
        let panel = app
            .scorecards()
            .list_scorecards(req(
                &org.admin,
                proto::ListScorecardsRequest { candidate: s.candidate.clone(), ..Default::default() },
            ))
            .await
            .expect("scorecards")
            .into_inner();
        assert!(panel.scorecards.iter().all(|c| c.interviewer != s.interviewer), "{s:?}");
    }
    // Nobody has assessed debugging or explaining trade-offs: the plan goes there.
    assert!(
        planned
            .suggestions
            .iter()
            .any(|s| s.competencies.iter().any(|c| c == "debugging" || c == "explaining_tradeoffs")),
        "{planned:?}"
    );
    // A settled candidate (p near 0 or 1) is worth less than an undecided one.
    let first = &planned.suggestions[0];
    assert!(first.p_above_line > 0.05 && first.p_above_line < 0.95, "{first:?}");

    // A named pool, with a newcomer planned as a typical interviewer.
    let pool = app
        .calibration()
        .plan_interviews(req(&recruiter, plan(3, 0, vec!["ivan".into(), "nadia".into()])))
        .await
        .expect("plan from a pool")
        .into_inner();
    assert!(pool.suggestions.iter().all(|s| s.interviewer == "ivan" || s.interviewer == "nadia"));
    assert!(pool.suggestions.iter().any(|s| s.interviewer == "nadia"), "{pool:?}");

    // Without a bar: the shortlist line.
    set_bar(&app, &org, None).await;
    let shortlist = app
        .calibration()
        .plan_interviews(req(&recruiter, plan(2, 0, Vec::new())))
        .await
        .expect("plan for the shortlist")
        .into_inner();
    assert!(shortlist.shortlist && (1.0..=4.0).contains(&shortlist.decision_line), "{shortlist:?}");
}

async fn bad_decision_requests_change_nothing(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let candidates = panel(&app, &org).await;
    let update = |bar: Option<f64>, paths: &[&str]| proto::UpdateJobRequest {
        job: Some(proto::Job { name: org.job.name.clone(), hiring_bar: bar, ..Default::default() }),
        update_mask: mask(paths),
    };
    let hiring = || app.hiring();
    expect_violations(
        hiring().update_job(req(&org.admin, update(Some(4.5), &["hiring_bar"]))).await,
        &["job.hiring_bar"],
    );
    expect_violations(
        hiring().update_job(req(&org.admin, update(Some(f64::NAN), &["hiring_bar"]))).await,
        &["job.hiring_bar"],
    );
    expect_violations(hiring().update_job(req(&org.admin, update(None, &["rubric"]))).await, &["update_mask.paths[0]"]);
    expect_violations(
        hiring().update_job(req(&org.admin, update(Some(3.0), &["hiring_bar", "colour"]))).await,
        &["update_mask.paths[1]"],
    );
    expect_violations(hiring().update_job(req(&org.admin, update(None, &[]))).await, &["update_mask"]);
    expect_violations(hiring().update_job(req(&org.admin, update(None, &["title"]))).await, &["job.title"]);
    let mut ghost = update(Some(3.0), &["hiring_bar"]);
    if let Some(j) = ghost.job.as_mut() {
        j.name = "jobs/0123456789abcdef0123456789abcdef".into();
    }
    expect_code(hiring().update_job(req(&org.admin, ghost)).await, Code::NotFound);
    let recruiter = token("rita", &org.name, &["recruiter"]);
    expect_code(hiring().update_job(req(&recruiter, update(Some(3.0), &["hiring_bar"]))).await, Code::PermissionDenied);
    let job = hiring()
        .get_job(req(&org.admin, proto::GetJobRequest { name: org.job.name.clone() }))
        .await
        .expect("get job")
        .into_inner();
    assert_eq!(job, org.job, "no refused update changed the job");
    expect_violations(
        hiring()
            .create_job(req(
                &org.admin,
                proto::CreateJobRequest {
                    job: Some(proto::Job {
                        title: "Too high".into(),
                        rubric: org.rubric.name.clone(),
                        hiring_bar: Some(0.5),
                        ..Default::default()
                    }),
                },
            ))
            .await,
        &["job.hiring_bar"],
    );

    let compare = |names: Vec<String>| proto::CompareCandidatesRequest { job: org.job.name.clone(), candidates: names };
    let calibration = || app.calibration();
    expect_violations(
        calibration().compare_candidates(req(&recruiter, compare(vec![candidates[0].name.clone()]))).await,
        &["candidates"],
    );
    expect_violations(
        calibration()
            .compare_candidates(req(&recruiter, compare(vec![candidates[0].name.clone(), candidates[0].name.clone()])))
            .await,
        &["candidates[1]"],
    );
    expect_violations(
        calibration()
            .compare_candidates(req(&recruiter, compare(vec![candidates[0].name.clone(), "people/x".into()])))
            .await,
        &["candidates[1]"],
    );
    let unrated = org.candidate(&app, "ats-unrated").await;
    expect_code(
        calibration()
            .compare_candidates(req(&recruiter, compare(vec![candidates[0].name.clone(), unrated.name.clone()])))
            .await,
        Code::FailedPrecondition,
    );
    expect_code(
        calibration()
            .compare_candidates(req(
                &recruiter,
                compare(vec![candidates[0].name.clone(), "candidates/0123456789abcdef0123456789abcdef".into()]),
            ))
            .await,
        Code::NotFound,
    );
    let interviewer = token("ivan", &org.name, &["interviewer"]);
    expect_code(
        calibration()
            .compare_candidates(req(
                &interviewer,
                compare(vec![candidates[0].name.clone(), candidates[1].name.clone()]),
            ))
            .await,
        Code::PermissionDenied,
    );

    let plan = |slots: i32| proto::PlanInterviewsRequest { job: org.job.name.clone(), slots, ..Default::default() };
    expect_violations(calibration().plan_interviews(req(&recruiter, plan(0))).await, &["slots"]);
    expect_violations(calibration().plan_interviews(req(&recruiter, plan(201))).await, &["slots"]);
    let mut negative = plan(3);
    negative.max_per_interviewer = -1;
    negative.interviewers = vec![String::new(), "ivan".into(), "ivan".into()];
    expect_violations(
        calibration().plan_interviews(req(&recruiter, negative)).await,
        &["interviewers[0]", "interviewers[2]", "max_per_interviewer"],
    );
    let mut first_interview = plan(3);
    first_interview.candidates = vec![unrated.name.clone()];
    expect_code(calibration().plan_interviews(req(&recruiter, first_interview)).await, Code::FailedPrecondition);
}

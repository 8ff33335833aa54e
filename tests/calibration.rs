//! Calibration over real gRPC, on SQLite and PostgreSQL: rankings that read
//! their writes, assessments with evidence, rater reports with their access
//! rule, panel reliability, the ranking stream, and reload after a restart.

mod common;

use common::{Org, TestApp, amendment, execute, expect_code, expect_violations, rate, rating, req, token};
use scorecard::proto::{self, Recommendation};
use tonic::Code;

on_both_databases!(
    rankings_read_their_writes_and_correct_a_harsh_rater,
    assessment_reports_and_reliability,
    watch_ranking_streams_changes,
    calibration_reloads_after_a_restart,
    thin_evidence_is_kept_with_each_rating_and_read_back_by_a_load,
    racing_amendments_leave_the_latest_revision_in_the_assessment,
);

async fn ranking(app: &TestApp, org: &Org) -> proto::Ranking {
    let recruiter = token("rita", &org.name, &["recruiter"]);
    app.calibration()
        .get_ranking(req(&recruiter, proto::GetRankingRequest { job: org.job.name.clone(), ..Default::default() }))
        .await
        .expect("ranking")
        .into_inner()
}

async fn rankings_read_their_writes_and_correct_a_harsh_rater(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let mut candidates = Vec::new();
    for n in 0..4 {
        candidates.push(org.candidate(&app, &format!("c{n}")).await);
    }
    assert!(ranking(&app, &org).await.entries.is_empty());

    // Every submission shows in the very next ranking read.
    let first = rate(&app, &org, &candidates[0], "ana", 3).await;
    let r = ranking(&app, &org).await;
    assert_eq!(r.entries.len(), 1);
    assert_eq!(r.entries[0].candidate, first.candidate);
    assert_eq!(r.entries[0].scorecard_count, 1);
    assert!(r.entries[0].flags.iter().any(|f| f == "only one interview"));

    // Three lenient-to-normal raters see everyone; "harsh" sees only candidate 3
    // and gives it a 1 where the others give 4. Candidate 3 stays on top of
    // candidate 2 (others give 3) once the harsh rater is calibrated.
    let scores = [[3, 3, 3], [2, 2, 2], [3, 3, 3], [4, 4, 4]];
    for (c, row) in scores.iter().enumerate() {
        for (r, &s) in row.iter().enumerate() {
            if c == 0 && r == 0 {
                continue; // already submitted above
            }
            let rater = ["ana", "ben", "cam"][r];
            rate(&app, &org, &candidates[c], rater, s).await;
        }
    }
    // The harsh rater also rates three others well below everyone.
    for candidate in &candidates[..3] {
        rate(&app, &org, candidate, "harsh", 1).await;
    }
    let before = ranking(&app, &org).await;
    let harsh_on_top = rate(&app, &org, &candidates[3], "harsh", 2).await;
    let r = ranking(&app, &org).await;
    let entry = r.entries.iter().find(|e| e.candidate == harsh_on_top.candidate).expect("entry");
    assert_eq!(entry.scorecard_count, 4, "read your writes");
    assert_ne!(before.entries, r.entries);
    assert_eq!(r.entries[0].candidate, candidates[3].name, "the strongest candidate stays first: {r:?}");
    assert_eq!(r.entries.last().map(|e| e.candidate.clone()), Some(candidates[1].name.clone()));
    for (i, e) in r.entries.iter().enumerate() {
        assert_eq!(e.rank, i as i32 + 1);
        assert!(e.score_lower <= e.score && e.score <= e.score_upper, "{e:?}");
        assert!(e.score_lower >= 1.0 && e.score_upper <= 4.0, "on the rubric's scale: {e:?}");
        assert!(e.raw_mean >= 1.0 && e.raw_mean <= 4.0);
        assert_eq!(e.dimensions.len(), 2, "technical and communication");
    }
    // The harsh 2 pulls candidate 3's raw mean down by half a point; once the
    // harsh rater is calibrated it costs the calibrated score far less.
    let top = &r.entries[0];
    let earlier = before.entries.iter().find(|e| e.candidate == top.candidate).expect("ranked before");
    let (raw_drop, calibrated_drop) = (earlier.raw_mean - top.raw_mean, earlier.score - top.score);
    assert!((raw_drop - 0.5).abs() < 1e-6, "{earlier:?} → {top:?}");
    assert!(calibrated_drop < 0.5 * raw_drop, "calibrated {calibrated_drop}, raw {raw_drop}: {earlier:?} → {top:?}");

    // An amendment replaces the scorecard's ratings in the ranking at once.
    let me = token("harsh", "acme", &["interviewer"]);
    let evidence = "Walked through the failure modes of the design and how each was tested.".to_string();
    app.scorecards()
        .amend_scorecard(req(
            &me,
            proto::AmendScorecardRequest {
                name: harsh_on_top.name.clone(),
                ratings: vec![
                    proto::Rating { competency: "api_design".into(), score: 4, evidence: evidence.clone() },
                    proto::Rating { competency: "collaboration".into(), score: 4, evidence },
                ],
                recommendation: Recommendation::StrongYes as i32,
                reason: "Scored the wrong candidate".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("amend");
    let amended = ranking(&app, &org).await;
    let entry = amended.entries.iter().find(|e| e.candidate == harsh_on_top.candidate).expect("entry");
    assert_eq!(entry.scorecard_count, 4, "amending does not add a scorecard");
    assert!((entry.raw_mean - 4.0).abs() < 1e-9, "all four scorecards now say 4: {entry:?}");

    // Paging through the ranking.
    let recruiter = token("rita", "acme", &["recruiter"]);
    let page = app
        .calibration()
        .get_ranking(req(
            &recruiter,
            proto::GetRankingRequest { job: org.job.name.clone(), page_size: 3, page_token: String::new() },
        ))
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.entries.len(), 3);
    let rest = app
        .calibration()
        .get_ranking(req(
            &recruiter,
            proto::GetRankingRequest {
                job: org.job.name.clone(),
                page_size: 3,
                page_token: page.next_page_token.clone(),
            },
        ))
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(rest.entries.len(), 1);
    assert_eq!(rest.entries[0].rank, 4);
    assert!(rest.next_page_token.is_empty());
    expect_code(
        app.calibration()
            .get_ranking(req(&recruiter, proto::GetRankingRequest { job: "jobs/nope".into(), ..Default::default() }))
            .await,
        Code::NotFound,
    );
}

async fn assessment_reports_and_reliability(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let raters = ["ana", "ben", "cam", "dee"];
    let mut candidates = Vec::new();
    for n in 0..6 {
        let c = org.candidate(&app, &format!("c{n}")).await;
        for (r, rater) in raters.iter().enumerate() {
            // Raters agree on the order of candidates; "dee" is one point kinder.
            let score = (1 + n % 4 + usize::from(r == 3)).min(4) as i32;
            rate(&app, &org, &c, rater, score).await;
        }
        candidates.push(c);
    }
    let recruiter = token("rita", "acme", &["recruiter"]);
    let assessment = app
        .calibration()
        .get_candidate_assessment(req(
            &recruiter,
            proto::GetCandidateAssessmentRequest { job: org.job.name.clone(), candidate: candidates[0].name.clone() },
        ))
        .await
        .expect("assessment")
        .into_inner();
    let keys: Vec<_> = assessment.competencies.iter().map(|c| c.competency.as_str()).collect();
    assert_eq!(keys, ["api_design", "collaboration"]);
    for c in &assessment.competencies {
        assert_eq!(c.evidence.len(), 4, "one rating per interviewer");
        assert!(c.evidence.iter().all(|e| !e.evidence.is_empty() && e.scorecard.starts_with("scorecards/")));
        assert!(c.lower <= c.score && c.score <= c.upper);
    }

    // Rater reports: four raters with 12 ratings each — too few to judge.
    let reports = app
        .calibration()
        .list_rater_reports(req(&recruiter, proto::ListRaterReportsRequest::default()))
        .await
        .expect("reports")
        .into_inner();
    assert_eq!(reports.reports.iter().map(|r| r.rater.as_str()).collect::<Vec<_>>(), raters);
    for r in &reports.reports {
        assert_eq!(r.rating_count, 12);
        assert_eq!(r.flags.len(), 1);
        assert_eq!(r.flags[0].kind, proto::rater_flag::Kind::InsufficientData as i32);
        assert!(!r.flags[0].detail.is_empty());
        assert!(r.severity_lower <= r.severity && r.severity <= r.severity_upper);
    }
    let flagged = app
        .calibration()
        .list_rater_reports(req(
            &recruiter,
            proto::ListRaterReportsRequest { flagged_only: true, ..Default::default() },
        ))
        .await
        .expect("flagged")
        .into_inner();
    assert!(flagged.reports.is_empty(), "insufficient data is not a flag to act on");
    // An interviewer reads their own report, nobody else's.
    let ana = token("ana", "acme", &["interviewer"]);
    let own = app
        .calibration()
        .get_rater_report(req(&ana, proto::GetRaterReportRequest { rater: "ana".into() }))
        .await
        .expect("own report")
        .into_inner();
    assert_eq!(own.rater, "ana");
    expect_code(
        app.calibration().get_rater_report(req(&ana, proto::GetRaterReportRequest { rater: "ben".into() })).await,
        Code::PermissionDenied,
    );
    expect_code(
        app.calibration()
            .get_rater_report(req(&recruiter, proto::GetRaterReportRequest { rater: "nobody".into() }))
            .await,
        Code::NotFound,
    );

    // Reliability per competency and overall; the two ways of asking agree.
    let by_job = app
        .calibration()
        .get_panel_reliability(req(
            &recruiter,
            proto::GetPanelReliabilityRequest { job: org.job.name.clone(), rubric: String::new() },
        ))
        .await
        .expect("by job")
        .into_inner();
    assert_eq!(by_job.competencies.len(), 2);
    let overall = by_job.overall.clone().expect("overall");
    assert_eq!((overall.rater_count, overall.subject_count), (4, 6));
    // A complete design where the raters agree on the order: high reliability,
    // the same per competency (each scorecard gives one score to both) and overall.
    let icc = overall.icc2_1.expect("defined");
    assert!(icc > 0.7 && icc <= 1.0, "{icc}");
    assert!(overall.icc2_k.expect("defined") >= icc);
    for c in &by_job.competencies {
        assert!((c.icc2_1.expect("defined") - icc).abs() < 1e-9);
    }
    assert!(overall.alpha_interval.is_some() && overall.alpha_ordinal.is_some());
    let by_rubric = app
        .calibration()
        .get_panel_reliability(req(
            &recruiter,
            proto::GetPanelReliabilityRequest { job: String::new(), rubric: org.rubric.name.clone() },
        ))
        .await
        .expect("by rubric")
        .into_inner();
    assert_eq!(by_rubric, by_job);
    expect_violations(
        app.calibration()
            .get_panel_reliability(req(
                &recruiter,
                proto::GetPanelReliabilityRequest { job: org.job.name.clone(), rubric: org.rubric.name.clone() },
            ))
            .await,
        &["job", "rubric"],
    );
}

async fn watch_ranking_streams_changes(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let ana = org.candidate(&app, "c1").await;
    let recruiter = token("rita", "acme", &["recruiter"]);
    let mut stream = app
        .calibration()
        .watch_ranking(req(&recruiter, proto::WatchRankingRequest { job: org.job.name.clone() }))
        .await
        .expect("watch")
        .into_inner();
    let first = stream.message().await.expect("first").expect("a ranking");
    assert!(first.entries.is_empty());
    rate(&app, &org, &ana, "ben", 3).await;
    // The next ranking on the stream (a background refit may add later ones).
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
        .await
        .expect("a ranking within 10 s")
        .expect("stream")
        .expect("a ranking");
    assert_eq!(next.entries.len(), 1);
    assert_eq!(next.entries[0].candidate, ana.name);
}

async fn calibration_reloads_after_a_restart(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    for n in 0..3 {
        let c = org.candidate(&app, &format!("c{n}")).await;
        for (r, rater) in ["ana", "ben"].iter().enumerate() {
            rate(&app, &org, &c, rater, 1 + ((n + r) % 4) as i32).await;
        }
    }
    let before = ranking(&app, &org).await;
    // Loaded from the scorecards and fitted afresh, not restored from the
    // snapshot the stop writes (tests/snapshots.rs).
    let no_snapshots = scorecard::server::Settings { calibration_snapshots: false, ..common::test_settings() };
    let app = app.restart_with(no_snapshots).await;
    let after = ranking(&app, &org).await;
    let names = |r: &proto::Ranking| r.entries.iter().map(|e| e.candidate.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before));
    for (a, b) in after.entries.iter().zip(&before.entries) {
        assert_eq!(a.scorecard_count, b.scorecard_count);
        assert!((a.raw_mean - b.raw_mean).abs() < 1e-9);
        assert!((a.score - b.score).abs() < 0.05, "{a:?} vs {b:?}");
    }
}

/// Whether a rating's evidence is thin is stored with it when it is written,
/// so that loading an organisation never reads evidence text; a restart's
/// reports say what the live ones said. Ratings written before that column
/// (its value NULL) are judged from their evidence, as before.
async fn thin_evidence_is_kept_with_each_rating_and_read_back_by_a_load(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    for n in 0..3 {
        let c = org.candidate(&app, &format!("c{n}")).await;
        rate(&app, &org, &c, "rich", 3).await;
        let interview = org.interview(&app, &c, "tess").await;
        let tess = token("tess", "acme", &["interviewer"]);
        app.scorecards()
            .submit_scorecard(req(
                &tess,
                proto::SubmitScorecardRequest {
                    interview: interview.name.clone(),
                    ratings: ["api_design", "collaboration"]
                        .map(|c| proto::Rating { competency: c.into(), score: 3, evidence: "Smart, nice.".into() })
                        .to_vec(),
                    recommendation: Recommendation::Yes as i32,
                    ..Default::default()
                },
            ))
            .await
            .expect("submit");
    }
    let recruiter = token("rita", "acme", &["recruiter"]);
    let quality = |app: &TestApp| {
        let (mut client, recruiter) = (app.calibration(), recruiter.clone());
        async move {
            let reports = client
                .list_rater_reports(req(&recruiter, proto::ListRaterReportsRequest::default()))
                .await
                .expect("reports")
                .into_inner()
                .reports;
            reports.into_iter().map(|r| (r.rater, r.evidence_quality)).collect::<Vec<_>>()
        }
    };
    let expected = vec![("rich".to_string(), 1.0), ("tess".to_string(), 0.0)];
    assert_eq!(quality(&app).await, expected, "live");
    assert_eq!(execute(&app, "update ratings set thin = thin where thin is null").await, 0, "every rating carries it");
    // Restarts that load from the scorecards, not from the snapshot the
    // stop writes (tests/snapshots.rs covers that).
    let no_snapshots = scorecard::server::Settings { calibration_snapshots: false, ..common::test_settings() };
    let app = app.restart_with(no_snapshots.clone()).await;
    assert_eq!(quality(&app).await, expected, "loaded from the stored flags");
    // As if written before the column: the load judges the evidence itself.
    assert_eq!(execute(&app, "update ratings set thin = null").await, 12);
    let app = app.restart_with(no_snapshots).await;
    assert_eq!(quality(&app).await, expected, "loaded from the evidence");
}

/// Two amendments of one scorecard racing each other: once both are
/// acknowledged, the assessment shows the revision the database kept as
/// current, never the older one (their calibration updates may arrive out of
/// order). Both databases.
async fn racing_amendments_leave_the_latest_revision_in_the_assessment(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let recruiter = token("rita", "acme", &["recruiter"]);
    for round in 0..40 {
        let candidate = org.candidate(&app, &format!("c-{round}")).await;
        let interview = org.interview(&app, &candidate, "ivan").await;
        let card = org.submit(&app, &interview).await;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let amendments: Vec<_> = [1, 4]
            .into_iter()
            .map(|score| {
                let (start, mut client, admin) = (start.clone(), app.scorecards(), org.admin.clone());
                let request =
                    amendment(&card.name, vec![rating("api_design", score), rating("collaboration", score)], "racing");
                tokio::spawn(async move {
                    start.wait().await;
                    client.amend_scorecard(req(&admin, request)).await
                })
            })
            .collect();
        for amendment in amendments {
            amendment.await.expect("join").expect("both amendments are acknowledged");
        }
        let stored = app
            .scorecards()
            .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: card.name.clone(), revision: 0 }))
            .await
            .expect("get")
            .into_inner();
        assert_eq!(stored.revision, 3);
        let assessment = app
            .calibration()
            .get_candidate_assessment(req(
                &recruiter,
                proto::GetCandidateAssessmentRequest { job: org.job.name.clone(), candidate: candidate.name.clone() },
            ))
            .await
            .expect("assessment")
            .into_inner();
        let api_design = assessment.competencies.iter().find(|c| c.competency == "api_design").expect("rated");
        assert_eq!(
            api_design.raw_mean,
            f64::from(stored.ratings[0].score),
            "round {round}: the assessment shows the current revision's score"
        );
    }
}

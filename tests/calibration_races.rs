//! The calibration state stays exact under concurrency (issue 16): a reload
//! keeps what was acknowledged while it ran, a load never lets an older
//! revision replace the one it read, and the background refit lands while
//! writes keep arriving. Each race is lined up with the service's pause points
//! (`scorecard::pauses`), not with sleeps.

mod common;

use std::time::{Duration, Instant};

use common::{Org, TestApp, amendment, rating, req, token};
use scorecard::proto::{self, import_item::Item};

on_both_databases!(
    a_scorecard_acknowledged_during_a_reload_is_ranked_after_it,
    a_late_update_of_an_older_revision_does_not_replace_what_a_load_read,
    the_refit_lands_while_writes_keep_arriving
);

async fn ranked_candidates(app: &TestApp, org: &Org) -> Vec<String> {
    let mut names: Vec<String> =
        common::full_ranking(app, org).await.entries.into_iter().map(|e| e.candidate).collect();
    names.sort();
    names
}

/// One imported scorecard for the organisation's job: the import reloads the
/// organisation's calibration before it answers.
fn one_imported_scorecard() -> Vec<proto::ImportScorecardsRequest> {
    let ts = Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 });
    let items = vec![
        Item::Candidate(proto::ImportCandidate {
            external_id: "imported-1".into(),
            display_name: "Imported One".into(),
            email: String::new(),
        }),
        Item::Interview(proto::ImportInterview {
            external_id: "imported-interview-1".into(),
            job_external_id: "gh-job-1".into(),
            candidate_external_id: "imported-1".into(),
            interviewer: "ivan".into(),
            focus_competencies: vec!["api_design".into(), "collaboration".into()],
            scheduled_time: ts,
        }),
        Item::Scorecard(proto::ImportScorecard {
            interview_external_id: "imported-interview-1".into(),
            ratings: vec![rating("api_design", 3), rating("collaboration", 3)],
            recommendation: proto::Recommendation::Yes as i32,
            summary: "From the ATS.".into(),
            submit_time: ts,
        }),
    ];
    vec![proto::ImportScorecardsRequest {
        items: items.into_iter().map(|i| proto::ImportItem { item: Some(i) }).collect(),
    }]
}

async fn a_scorecard_acknowledged_during_a_reload_is_ranked_after_it(app: TestApp) {
    let id = common::org_id("reload", &app);
    let org = Org::new(&app, &id).await;
    let first = org.candidate(&app, "c-first").await;
    org.submit(&app, &org.interview(&app, &first, "ivan").await).await;
    assert_eq!(ranked_candidates(&app, &org).await.len(), 1, "the organisation is loaded");

    // An import has the organisation loaded afresh once its stream ends (here
    // by the background load a second later: no read comes first); the load
    // stops once it has read the database, before the reloaded state replaces
    // the current one.
    let pause = scorecard::pauses::arm("calibrator.reload.loaded", &id);
    let import = {
        let mut client = app.scorecards();
        let sync = token("ats", &id, &["integration"]);
        tokio::spawn(
            async move { client.import_scorecards(req(&sync, tokio_stream::iter(one_imported_scorecard()))).await },
        )
    };
    pause.reached().await;
    // Acknowledged while the reload is between its read and its swap.
    let during = org.candidate(&app, "c-during").await;
    org.submit(&app, &org.interview(&app, &during, "lena").await).await;
    pause.release();
    let imported = import.await.expect("join").expect("import").into_inner();
    assert_eq!(imported.created, 3);

    let ranked = ranked_candidates(&app, &org).await;
    assert_eq!(ranked.len(), 3, "first, imported and the one acknowledged during the reload: {ranked:?}");
    assert!(ranked.contains(&during.name), "the scorecard acknowledged during the reload is ranked");
}

/// Calibrated `api_design` of `candidate` for the organisation's job.
async fn api_design(app: &TestApp, org: &Org, candidate: &str) -> f64 {
    let assessment = app
        .calibration()
        .get_candidate_assessment(req(
            &org.admin,
            proto::GetCandidateAssessmentRequest { job: org.job.name.clone(), candidate: candidate.to_string() },
        ))
        .await
        .expect("assessment")
        .into_inner();
    assessment.competencies.iter().find(|c| c.competency == "api_design").expect("api_design assessed").score
}

async fn a_late_update_of_an_older_revision_does_not_replace_what_a_load_read(app: TestApp) {
    let id = common::org_id("late", &app);
    let org = Org::new(&app, &id).await;
    // A panel, so that one scorecard's ratings move its candidate visibly.
    let mut target = None;
    for (n, rater) in ["ivan", "lena", "omar"].iter().enumerate() {
        let candidate = org.candidate(&app, &format!("c-{n}")).await;
        let card = org.submit(&app, &org.interview(&app, &candidate, rater).await).await;
        if n == 0 {
            target = Some((candidate, card));
        }
    }
    let (candidate, card) = target.expect("first candidate");
    let ivan = token("ivan", &id, &["interviewer"]);

    // Revision 2 commits; its calibration update stops before it applies.
    let pause = scorecard::pauses::arm("calibrator.update.before_apply", &id);
    let low = {
        let (app_channel, ivan, name) = (app.scorecards(), ivan.clone(), card.name.clone());
        tokio::spawn(async move {
            let mut client = app_channel;
            let low = amendment(&name, vec![rating("api_design", 1), rating("collaboration", 1)], "typo");
            client.amend_scorecard(req(&ivan, low)).await
        })
    };
    pause.reached().await;
    // Revision 3 commits and applies; an import then reloads the organisation,
    // whose load reads revision 3.
    let high = amendment(&card.name, vec![rating("api_design", 4), rating("collaboration", 4)], "second thoughts");
    let third = common::amend(&app, &ivan, high).await;
    assert_eq!(third.revision, 3);
    let sync = token("ats", &id, &["integration"]);
    app.scorecards().import_scorecards(req(&sync, tokio_stream::iter(one_imported_scorecard()))).await.expect("import");
    let settled = api_design(&app, &org, &candidate.name).await;
    // The late update of revision 2 arrives now.
    pause.release();
    let second = low.await.expect("join").expect("amend to revision 2").into_inner();
    assert_eq!(second.revision, 2);
    let after = api_design(&app, &org, &candidate.name).await;
    // (A refit may land in between: equal up to its convergence, not bit for bit.)
    assert!(
        (after - settled).abs() < 0.05,
        "revision 2 arriving late does not replace revision 3: {settled} → {after}"
    );
    assert!(after > 2.5, "the calibrated score reflects revision 3's ratings of 4: {after}");
}

async fn the_refit_lands_while_writes_keep_arriving(app: TestApp) {
    let id = common::org_id("steady", &app);
    let org = Org::new(&app, &id).await;
    let raters = ["ivan", "lena", "omar", "priya"];
    let mut interviews = Vec::new();
    for n in 0..150 {
        let candidate = org.candidate(&app, &format!("c-{n}")).await;
        interviews.push(org.interview(&app, &candidate, raters[n % raters.len()]).await);
    }
    // Arm the point the refit passes once it has swapped its fit in.
    let landed = scorecard::pauses::arm("calibrator.refit.landed", &id);
    let started = Instant::now();
    let mut submitted = 0;
    // A submission every 100 ms: always sooner than the refit's quiet time.
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    let landed_while_writing = {
        let reached = landed.reached();
        tokio::pin!(reached);
        loop {
            tokio::select! {
                _ = &mut reached => break true,
                _ = ticks.tick() => {
                    if submitted == interviews.len() {
                        break false;
                    }
                    org.submit(&app, &interviews[submitted]).await;
                    submitted += 1;
                }
            }
        }
    };
    assert!(
        landed_while_writing,
        "a refit landed within {:?} of steady writes ({submitted} scorecards, one per 100 ms)",
        started.elapsed()
    );
    assert!(submitted < interviews.len(), "writes were still arriving when the refit landed");
    drop(landed);
    assert_eq!(ranked_candidates(&app, &org).await.len(), submitted, "every acknowledged scorecard is ranked");
}

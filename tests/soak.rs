//! A soak (issue 16): writers, amendments and erasures together against one
//! organisation, both databases side by side: 20 s in the test command, a
//! minute in the long profile (`SCORECARD_SOAK_SECONDS=60`), then the invariants the races threatened. The
//! organisation starts with an imported history (2,400 ratings), so live
//! submissions take the incremental update and background refits run, and
//! replay what arrives during them, while the soak writes:
//!
//! - no acknowledged scorecard is missing, and the ranking counts each one;
//! - no free text about an erased candidate survives, in any revision;
//! - the live calibration equals a fresh load and full fit of the same data
//!   (a restarted server), within the fit's tolerance.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Org, TestApp, amendment, rating, req};
use rand::Rng;
use scorecard::proto;
use tonic::Code;

on_both_databases!(writers_amendments_and_erasures_together_keep_every_invariant);

const CANDIDATES: usize = 16;
/// The imported history: scorecards over this many other candidates.
const HISTORY_SCORECARDS: usize = 1_200;
const HISTORY_CANDIDATES: usize = 200;
const INTERVIEWERS: [&str; 6] = ["ivan", "lena", "omar", "priya", "sam", "tara"];

fn soak_time() -> Duration {
    let seconds = std::env::var("SCORECARD_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    Duration::from_secs(seconds)
}

fn random_ratings() -> Vec<proto::Rating> {
    let mut rng = rand::rng();
    vec![rating("api_design", rng.random_range(1..=4)), rating("collaboration", rng.random_range(1..=4))]
}

/// What the soak's clients were told.
#[derive(Default)]
struct Acknowledged {
    /// Scorecard name → candidate index.
    scorecards: BTreeMap<String, usize>,
    /// Candidates whose erasure returned OK.
    erased: HashSet<usize>,
    amendments: usize,
    refused_as_erased: usize,
}

/// A write racing an erasure may be refused as erased; nothing else may fail.
fn refused_as_erased(status: &tonic::Status, what: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{what} failed for another reason than erasure: {status:?}");
}

/// Imports the history; returns each imported candidate's name and scorecards.
async fn import_history(app: &TestApp) -> BTreeMap<String, i32> {
    use proto::import_item::Item;
    let ts = Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 });
    let mut items = Vec::new();
    for c in 0..HISTORY_CANDIDATES {
        items.push(Item::Candidate(proto::ImportCandidate {
            external_id: format!("h-{c}"),
            display_name: format!("History {c}"),
            email: String::new(),
        }));
    }
    for k in 0..HISTORY_SCORECARDS {
        items.push(Item::Interview(proto::ImportInterview {
            external_id: format!("h-i-{k}"),
            job_external_id: "gh-job-1".into(),
            candidate_external_id: format!("h-{}", k % HISTORY_CANDIDATES),
            interviewer: INTERVIEWERS[(k / HISTORY_CANDIDATES) % INTERVIEWERS.len()].into(),
            focus_competencies: vec!["api_design".into(), "collaboration".into()],
            scheduled_time: ts,
        }));
        items.push(Item::Scorecard(proto::ImportScorecard {
            interview_external_id: format!("h-i-{k}"),
            ratings: random_ratings(),
            recommendation: proto::Recommendation::Yes as i32,
            summary: "From the ATS.".into(),
            submit_time: ts,
        }));
    }
    let messages: Vec<proto::ImportScorecardsRequest> = items
        .chunks(500)
        .map(|chunk| proto::ImportScorecardsRequest {
            items: chunk.iter().cloned().map(|i| proto::ImportItem { item: Some(i) }).collect(),
        })
        .collect();
    let sync = common::token("ats", "acme", &["integration"]);
    let imported = app
        .scorecards()
        .import_scorecards(req(&sync, tokio_stream::iter(messages)))
        .await
        .expect("import the history")
        .into_inner();
    assert_eq!(imported.failed, 0, "{:?}", imported.results.iter().find(|r| !r.violations.is_empty()));
    (0..HISTORY_CANDIDATES)
        .map(|c| {
            let scorecards = HISTORY_SCORECARDS / HISTORY_CANDIDATES;
            (imported.results[c].resource.clone(), scorecards as i32)
        })
        .collect()
}

async fn writers_amendments_and_erasures_together_keep_every_invariant(app: TestApp) {
    let app = Arc::new(app);
    let org = Arc::new(Org::new(&app, "acme").await);
    let history = import_history(&app).await;
    let mut candidates = Vec::new();
    for n in 0..CANDIDATES {
        candidates.push(org.candidate(&app, &format!("c-{n}")).await);
    }
    let candidates = Arc::new(candidates);
    let state = Arc::new(Mutex::new(Acknowledged::default()));
    let deadline = Instant::now() + soak_time();
    let mut tasks = Vec::new();

    // Writers: an interview, then its scorecard.
    for writer in 0..3 {
        let (app, org, candidates, state) = (app.clone(), org.clone(), candidates.clone(), state.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let (c, who) = {
                    let mut rng = rand::rng();
                    (rng.random_range(0..CANDIDATES), INTERVIEWERS[rng.random_range(0..INTERVIEWERS.len())])
                };
                let interview = proto::Interview {
                    job: org.job.name.clone(),
                    candidate: candidates[c].name.clone(),
                    interviewer: who.into(),
                    focus_competencies: vec!["api_design".into(), "collaboration".into()],
                    scheduled_time: Some(prost_types::Timestamp { seconds: 1_790_000_000, nanos: 0 }),
                    ..Default::default()
                };
                let created = app
                    .hiring()
                    .create_interview(req(&org.admin, proto::CreateInterviewRequest { interview: Some(interview) }))
                    .await;
                let interview = match created {
                    Ok(i) => i.into_inner(),
                    Err(status) => {
                        refused_as_erased(&status, "an interview");
                        continue;
                    }
                };
                let submission = proto::SubmitScorecardRequest {
                    ratings: random_ratings(),
                    ..Org::submission(&interview, &format!("w{writer}-{n}"))
                };
                match app.scorecards().submit_scorecard(req(&org.admin, submission)).await {
                    Ok(card) => {
                        state.lock().expect("state").scorecards.insert(card.into_inner().name, c);
                    }
                    Err(status) => {
                        refused_as_erased(&status, "a submission");
                        state.lock().expect("state").refused_as_erased += 1;
                    }
                }
            }
        }));
    }
    // Amenders: any acknowledged scorecard, new ratings.
    for _ in 0..2 {
        let (app, org, state) = (app.clone(), org.clone(), state.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let target = {
                    let s = state.lock().expect("state");
                    let n = s.scorecards.len();
                    (n > 0).then(|| s.scorecards.keys().nth(rand::rng().random_range(0..n)).cloned()).flatten()
                };
                let Some(name) = target else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let request = amendment(&name, random_ratings(), "re-read my notes");
                match app.scorecards().amend_scorecard(req(&org.admin, request)).await {
                    Ok(_) => state.lock().expect("state").amendments += 1,
                    Err(status) => {
                        refused_as_erased(&status, "an amendment");
                        state.lock().expect("state").refused_as_erased += 1;
                    }
                }
            }
        }));
    }
    // An eraser: a third of the candidates, spread over the soak.
    {
        let (app, org, candidates, state) = (app.clone(), org.clone(), candidates.clone(), state.clone());
        tasks.push(tokio::spawn(async move {
            let every = soak_time() / (CANDIDATES as u32 / 3 + 1);
            for c in (0..CANDIDATES).step_by(3) {
                tokio::time::sleep(every).await;
                let name = candidates[c].name.clone();
                app.hiring()
                    .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name }))
                    .await
                    .expect("erase");
                state.lock().expect("state").erased.insert(c);
            }
        }));
    }
    for task in tasks {
        task.await.expect("a soak task panicked");
    }
    let Acknowledged { scorecards, erased, amendments, refused_as_erased } =
        std::mem::take(&mut *state.lock().expect("state"));
    assert!(scorecards.len() > 100 && amendments > 50, "the soak did work: {} / {amendments}", scorecards.len());

    // Every acknowledged scorecard is stored; about erased candidates, no
    // revision holds free text.
    let mut client = app.scorecards();
    for (name, c) in &scorecards {
        let current = client
            .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: name.clone(), revision: 0 }))
            .await
            .unwrap_or_else(|e| panic!("acknowledged scorecard {name} is missing: {e:?}"))
            .into_inner();
        if erased.contains(c) {
            for revision in 1..=current.revision {
                let s = client
                    .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: name.clone(), revision }))
                    .await
                    .expect("revision")
                    .into_inner();
                assert!(
                    s.ratings.iter().all(|r| r.evidence.is_empty())
                        && s.summary.is_empty()
                        && s.amend_reason.is_empty(),
                    "{name} revision {revision} kept free text after its candidate's erasure"
                );
            }
        }
    }

    // The ranking counts every acknowledged scorecard of every candidate.
    let mut per_candidate = history;
    for c in scorecards.values() {
        *per_candidate.entry(candidates[*c].name.clone()).or_default() += 1;
    }
    let live = common::full_ranking(&app, &org).await;
    let ranked: BTreeMap<String, i32> = live.entries.iter().map(|e| (e.candidate.clone(), e.scorecard_count)).collect();
    assert_eq!(ranked, per_candidate, "every acknowledged scorecard is in the ranking, once");

    // Once the background refit has settled (two reads a second apart
    // agree), the live scores equal a fresh load and fit of the same data.
    let mut settled = live;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let again = common::full_ranking(&app, &org).await;
        if again.entries == settled.entries {
            break;
        }
        settled = again;
    }
    // Without the snapshot the stop writes: the restart must load and fit afresh.
    let fresh_load = scorecard::server::Settings { calibration_snapshots: false, ..common::test_settings() };
    let app = Arc::into_inner(app).expect("the soak's tasks are done").restart_with(fresh_load).await;
    let fresh = common::full_ranking(&app, &org).await;
    let fresh: BTreeMap<&str, f64> = fresh.entries.iter().map(|e| (e.candidate.as_str(), e.score)).collect();
    for e in &settled.entries {
        let refit = fresh[e.candidate.as_str()];
        assert!((e.score - refit).abs() < 0.02, "{}: live {} vs fresh fit {refit}", e.candidate, e.score);
    }
    let metrics = scorecard::metrics::global();
    let (refits, replayed) = (metrics.refits_landed(), metrics.refit_replayed_changes());
    assert!(refits > 0 && replayed > 0, "refits landed ({refits}) with changes replayed onto them ({replayed})");
    println!(
        "soak: {} scorecards, {amendments} amendments, {} erasures, {refused_as_erased} writes refused as erased; \
         process-wide: {refits} refits landed, {replayed} changes replayed onto them",
        scorecards.len(),
        erased.len()
    );
}

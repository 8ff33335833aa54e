//! ImportScorecards end to end: a stream of jobs, candidates, interviews and
//! scorecards by external id, per-item results, bad items failing alone,
//! idempotent re-runs, and rankings that reflect the import on return.

mod common;

use common::{Org, TestApp, expect_violations, rating, req};
use scorecard::proto::{self, Recommendation, import_item::Item, import_result::Outcome};

on_both_databases!(
    import_backfills_item_by_item_and_is_idempotent,
    import_refuses_malformed_messages,
    an_import_that_loses_a_race_writes_nothing_and_its_retry_finds_the_winners_items,
    an_import_whose_candidate_is_erased_before_its_write_writes_nothing,
    a_stream_of_several_batches_writes_each_and_keeps_what_came_before_a_bad_message
);

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn history(rubric: &str) -> Vec<Item> {
    let interview = |ext: &str, cand: &str, who: &str| {
        Item::Interview(proto::ImportInterview {
            external_id: ext.into(),
            job_external_id: "gh-job-9".into(),
            candidate_external_id: cand.into(),
            interviewer: who.into(),
            focus_competencies: vec!["api_design".into(), "collaboration".into()],
            scheduled_time: ts(1_700_000_000),
        })
    };
    let scorecard = |interview: &str, score: i32| {
        Item::Scorecard(proto::ImportScorecard {
            interview_external_id: interview.into(),
            ratings: vec![rating("api_design", score), rating("collaboration", 3)],
            recommendation: Recommendation::Yes as i32,
            summary: "From the ATS.".into(),
            submit_time: ts(1_700_003_600),
        })
    };
    vec![
        /* 0 */
        Item::Job(proto::ImportJob {
            external_id: "gh-job-9".into(),
            title: "Platform Engineer".into(),
            rubric: rubric.into(),
            rubric_revision: 0,
        }),
        /* 1 */
        Item::Candidate(proto::ImportCandidate {
            external_id: "gh-c-1".into(),
            display_name: "Ada".into(),
            email: "ada@example.com".into(),
        }),
        /* 2 */
        Item::Candidate(proto::ImportCandidate {
            external_id: "gh-c-2".into(),
            display_name: "Grace".into(),
            email: String::new(),
        }),
        /* 3 */ interview("gh-i-1", "gh-c-1", "ivan"),
        /* 4 */ interview("gh-i-2", "gh-c-2", "lena"),
        /* 5: unknown job */
        Item::Interview(proto::ImportInterview {
            external_id: "gh-i-3".into(),
            job_external_id: "gh-job-missing".into(),
            candidate_external_id: "gh-c-1".into(),
            interviewer: "ivan".into(),
            focus_competencies: vec!["api_design".into()],
            scheduled_time: ts(1_700_000_000),
        }),
        /* 6 */ scorecard("gh-i-1", 4),
        /* 7: score off the 1..4 scale */ scorecard("gh-i-2", 9),
        /* 8: unknown interview */ scorecard("gh-i-404", 3),
        /* 9: a candidate without a display name */
        Item::Candidate(proto::ImportCandidate {
            external_id: "gh-c-3".into(),
            display_name: String::new(),
            email: "not-an-email".into(),
        }),
    ]
}

async fn import(app: &TestApp, token: &str, items: Vec<Item>) -> proto::ImportScorecardsResponse {
    // Two messages, to cross a message boundary.
    let items: Vec<proto::ImportItem> = items.into_iter().map(|i| proto::ImportItem { item: Some(i) }).collect();
    let (a, b) = items.split_at(items.len() / 2);
    let messages = vec![
        proto::ImportScorecardsRequest { items: a.to_vec() },
        proto::ImportScorecardsRequest { items: b.to_vec() },
    ];
    app.scorecards().import_scorecards(req(token, tokio_stream::iter(messages))).await.expect("import").into_inner()
}

fn outcomes(r: &proto::ImportScorecardsResponse) -> Vec<Outcome> {
    r.results.iter().map(|x| Outcome::try_from(x.outcome).unwrap_or(Outcome::Unspecified)).collect()
}

async fn import_backfills_item_by_item_and_is_idempotent(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let sync = common::token("ats", "acme", &["integration"]);
    let first = import(&app, &sync, history(&org.rubric.name)).await;
    use Outcome::{Created as C, Failed as F, Unchanged as U};
    assert_eq!(outcomes(&first), [C, C, C, C, C, F, C, F, F, F]);
    assert_eq!((first.received, first.created, first.unchanged, first.failed), (10, 6, 0, 4));
    assert!(!first.truncated);
    let fields = |n: usize| first.results[n].violations.iter().map(|v| v.field.clone()).collect::<Vec<_>>();
    assert_eq!(fields(5), ["interview.job_external_id"]);
    assert_eq!(fields(7), ["scorecard.ratings[0].score"]);
    assert_eq!(fields(8), ["scorecard.interview_external_id"]);
    let mut bad_candidate = fields(9);
    bad_candidate.sort();
    assert_eq!(bad_candidate, ["candidate.display_name", "candidate.email"]);
    assert!(first.results.iter().enumerate().all(|(n, r)| r.index == n as i64));

    // The imported scorecard is stored as sent, with its historical time.
    let scorecard_name = first.results[6].resource.clone();
    let stored = app
        .scorecards()
        .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: scorecard_name.clone(), revision: 0 }))
        .await
        .expect("get imported scorecard")
        .into_inner();
    assert_eq!(stored.interviewer, "ivan");
    assert_eq!(stored.submit_time, ts(1_700_003_600));
    assert_eq!(stored.ratings.iter().map(|r| r.score).collect::<Vec<_>>(), [4, 3]);
    let interview = app
        .hiring()
        .get_interview(req(&org.admin, proto::GetInterviewRequest { name: first.results[3].resource.clone() }))
        .await
        .expect("get imported interview")
        .into_inner();
    assert_eq!(interview.external_id, "gh-i-1");
    assert_eq!(interview.scorecard, scorecard_name);

    // The ranking reflects the import as soon as it returned.
    let job = first.results[0].resource.clone();
    let ranking = app
        .calibration()
        .get_ranking(req(&org.admin, proto::GetRankingRequest { job: job.clone(), ..Default::default() }))
        .await
        .expect("ranking")
        .into_inner();
    assert_eq!(ranking.entries.len(), 1);
    assert_eq!(ranking.entries[0].candidate, first.results[1].resource);

    // Events were recorded for the new interviews and the scorecard.
    let events = app
        .events()
        .list_events(req(
            &org.admin,
            proto::ListEventsRequest {
                event_types: vec!["interview.created".into(), "scorecard.submitted".into()],
                ..Default::default()
            },
        ))
        .await
        .expect("events")
        .into_inner()
        .events;
    let resources: Vec<&str> = events.iter().map(|e| e.resource.as_str()).collect();
    assert!(resources.contains(&first.results[3].resource.as_str()));
    assert!(resources.contains(&first.results[4].resource.as_str()));
    assert!(resources.contains(&scorecard_name.as_str()));

    // Run again with the bad items fixed: what exists is unchanged, what was
    // refused is created now, nothing is doubled.
    let mut fixed = history(&org.rubric.name);
    fixed[5] = Item::Candidate(proto::ImportCandidate {
        external_id: "gh-c-4".into(),
        display_name: "Linus".into(),
        email: String::new(),
    });
    if let Item::Scorecard(s) = &mut fixed[7] {
        s.ratings[0].score = 2;
    }
    let second = import(&app, &sync, fixed).await;
    assert_eq!(outcomes(&second), [U, U, U, U, U, C, U, C, F, F]);
    for n in [0, 1, 2, 3, 4, 6] {
        assert_eq!(second.results[n].resource, first.results[n].resource, "item {n} keeps its resource");
    }
    let all = app
        .scorecards()
        .list_scorecards(req(&org.admin, proto::ListScorecardsRequest { job, ..Default::default() }))
        .await
        .expect("list")
        .into_inner()
        .scorecards;
    assert_eq!(all.len(), 2, "one scorecard per imported interview");

    // Interviewers and recruiters may not import.
    let ivan = common::token("ivan", "acme", &["interviewer"]);
    let denied = app
        .scorecards()
        .import_scorecards(req(&ivan, tokio_stream::iter(Vec::<proto::ImportScorecardsRequest>::new())))
        .await;
    common::expect_code(denied, tonic::Code::PermissionDenied);
}

async fn import_refuses_malformed_messages(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let empty = vec![proto::ImportScorecardsRequest { items: vec![] }];
    expect_violations(app.scorecards().import_scorecards(req(&org.admin, tokio_stream::iter(empty))).await, &["items"]);
    // An item with nothing in it fails alone.
    let hollow = vec![proto::ImportScorecardsRequest { items: vec![proto::ImportItem { item: None }] }];
    let r = app
        .scorecards()
        .import_scorecards(req(&org.admin, tokio_stream::iter(hollow)))
        .await
        .expect("import")
        .into_inner();
    assert_eq!(outcomes(&r), [Outcome::Failed]);
    assert_eq!(r.results[0].violations[0].field, "item");
}

/// Items 1, 3 and 6 of [`history`]: a candidate, their interview and its scorecard.
fn one_candidates_history(rubric: &str) -> Vec<Item> {
    let mut all = history(rubric);
    vec![all.swap_remove(6), all.swap_remove(3), all.swap_remove(1)].into_iter().rev().collect()
}

/// How many candidates, interviews and scorecards the organisation holds.
async fn stored(app: &TestApp, admin: &str) -> (usize, usize, usize) {
    let candidates = app
        .hiring()
        .list_candidates(req(admin, proto::ListCandidatesRequest { page_size: 1000, ..Default::default() }))
        .await
        .expect("list candidates")
        .into_inner()
        .candidates
        .len();
    let interviews = app
        .hiring()
        .list_interviews(req(admin, proto::ListInterviewsRequest { page_size: 1000, ..Default::default() }))
        .await
        .expect("list interviews")
        .into_inner()
        .interviews
        .len();
    let scorecards = app
        .scorecards()
        .list_scorecards(req(admin, proto::ListScorecardsRequest { page_size: 1000, ..Default::default() }))
        .await
        .expect("list scorecards")
        .into_inner()
        .scorecards
        .len();
    (candidates, interviews, scorecards)
}

async fn an_import_that_loses_a_race_writes_nothing_and_its_retry_finds_the_winners_items(app: TestApp) {
    let id = common::org_id("import-race", &app);
    let org = Org::new(&app, &id).await;
    let sync = common::token("ats", &id, &["integration"]);
    // The job first, so that both imports below find it stored and the race
    // is on the candidate, interview and scorecard (written in bulk).
    let job = history(&org.rubric.name).swap_remove(0);
    assert_eq!(import_in_one_message(&app, &sync, vec![job]).await.created, 1);

    // The first import has looked its items up (all new) and stops before
    // its write; a second import of the same items writes them meanwhile.
    let pause = scorecard::pauses::arm("import.before_write", &id);
    let first = {
        let (mut client, sync, items) = (app.scorecards(), sync.clone(), one_candidates_history(&org.rubric.name));
        let items: Vec<proto::ImportItem> = items.into_iter().map(|i| proto::ImportItem { item: Some(i) }).collect();
        let messages = vec![proto::ImportScorecardsRequest { items }];
        tokio::spawn(async move { client.import_scorecards(req(&sync, tokio_stream::iter(messages))).await })
    };
    pause.reached().await;
    let winner = import(&app, &sync, one_candidates_history(&org.rubric.name)).await;
    assert_eq!(winner.created, 3, "{winner:?}");
    pause.release();
    common::expect_code(first.await.expect("join"), tonic::Code::Aborted);

    // Nothing of the loser's was written, and its retry finds the winner's.
    assert_eq!(stored(&app, &org.admin).await, (1, 1, 1));
    let retry = import(&app, &sync, one_candidates_history(&org.rubric.name)).await;
    assert_eq!(outcomes(&retry), [Outcome::Unchanged; 3]);
    let resources =
        |r: &proto::ImportScorecardsResponse| r.results.iter().map(|x| x.resource.clone()).collect::<Vec<_>>();
    assert_eq!(resources(&retry), resources(&winner));
}

async fn an_import_whose_candidate_is_erased_before_its_write_writes_nothing(app: TestApp) {
    let id = common::org_id("import-erasure", &app);
    let org = Org::new(&app, &id).await;
    let sync = common::token("ats", &id, &["integration"]);
    let mut items = history(&org.rubric.name);
    let (scorecard, interview, candidate, job) =
        (items.swap_remove(6), items.swap_remove(3), items.swap_remove(1), items.swap_remove(0));
    let stored_first = import(&app, &sync, vec![job, candidate]).await;
    let candidate_name = stored_first.results[1].resource.clone();

    // The interview and its scorecard are looked up and validated against a
    // candidate not erased; the erasure commits before they are written.
    let pause = scorecard::pauses::arm("import.before_write", &id);
    let late = {
        let (mut client, sync) = (app.scorecards(), sync.clone());
        let items = vec![interview.clone(), scorecard.clone()];
        let items: Vec<proto::ImportItem> = items.into_iter().map(|i| proto::ImportItem { item: Some(i) }).collect();
        let messages = vec![proto::ImportScorecardsRequest { items }];
        tokio::spawn(async move { client.import_scorecards(req(&sync, tokio_stream::iter(messages))).await })
    };
    pause.reached().await;
    app.hiring()
        .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name: candidate_name }))
        .await
        .expect("erase");
    pause.release();
    common::expect_code(late.await.expect("join"), tonic::Code::Aborted);
    assert_eq!(stored(&app, &org.admin).await, (1, 0, 0), "no evidence stored about an erased candidate");

    // Retried, both fail: the erased candidate's external id is gone with
    // their personal data.
    let retry = import(&app, &sync, vec![interview, scorecard]).await;
    assert_eq!(outcomes(&retry), [Outcome::Failed, Outcome::Failed], "{retry:?}");
    assert_eq!(stored(&app, &org.admin).await, (1, 0, 0));
}

async fn import_in_one_message(app: &TestApp, token: &str, items: Vec<Item>) -> proto::ImportScorecardsResponse {
    let items: Vec<proto::ImportItem> = items.into_iter().map(|i| proto::ImportItem { item: Some(i) }).collect();
    let messages = vec![proto::ImportScorecardsRequest { items }];
    app.scorecards().import_scorecards(req(token, tokio_stream::iter(messages))).await.expect("import").into_inner()
}

/// A stream of several batches (2,000 items a transaction): later batches
/// refer to what earlier ones created, results keep the stream's order, and a
/// bad message after a batch keeps that batch.
async fn a_stream_of_several_batches_writes_each_and_keeps_what_came_before_a_bad_message(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let sync = common::token("ats", "acme", &["integration"]);
    let n = 900;
    let mut items = vec![history(&org.rubric.name).swap_remove(0)];
    items.extend((0..n).map(|k| {
        Item::Candidate(proto::ImportCandidate {
            external_id: format!("c-{k}"),
            display_name: format!("Candidate {k}"),
            email: String::new(),
        })
    }));
    items.extend((0..n).map(|k| {
        Item::Interview(proto::ImportInterview {
            external_id: format!("i-{k}"),
            job_external_id: "gh-job-9".into(),
            candidate_external_id: format!("c-{k}"),
            interviewer: format!("rater-{}", k % 7),
            focus_competencies: vec!["api_design".into()],
            scheduled_time: ts(1_700_000_000),
        })
    }));
    // The first batch (2,000 items) holds the job, the candidates, the
    // interviews and 199 scorecards; the second the other 701 scorecards,
    // whose interviews the first wrote.
    items.extend((0..n).map(|k| {
        Item::Scorecard(proto::ImportScorecard {
            interview_external_id: format!("i-{k}"),
            ratings: vec![rating("api_design", 1 + (k % 4) as i32)],
            recommendation: Recommendation::Yes as i32,
            summary: String::new(),
            submit_time: ts(1_700_003_600),
        })
    }));
    let total = items.len();
    let messages: Vec<proto::ImportScorecardsRequest> = items
        .chunks(500)
        .map(|chunk| proto::ImportScorecardsRequest {
            items: chunk.iter().map(|i| proto::ImportItem { item: Some(i.clone()) }).collect(),
        })
        .collect();
    let r = app
        .scorecards()
        .import_scorecards(req(&sync, tokio_stream::iter(messages)))
        .await
        .expect("import")
        .into_inner();
    assert_eq!((r.received, r.created, r.failed), (total as i64, total as i64, 0), "{:?}", &r.results[..3]);
    assert!(r.results.iter().enumerate().all(|(k, x)| x.index == k as i64));
    assert_eq!(stored(&app, &org.admin).await, (n, n, n));

    // Two full messages make a batch; the empty third ends the stream with an
    // error, and the batch before it is kept: re-sent, its items are unchanged.
    let fresh = |from: usize| -> Vec<proto::ImportItem> {
        (from..from + 1000)
            .map(|k| proto::ImportItem {
                item: Some(Item::Candidate(proto::ImportCandidate {
                    external_id: format!("late-{k}"),
                    display_name: format!("Late {k}"),
                    email: String::new(),
                })),
            })
            .collect()
    };
    let messages = vec![
        proto::ImportScorecardsRequest { items: fresh(0) },
        proto::ImportScorecardsRequest { items: fresh(1000) },
        proto::ImportScorecardsRequest { items: vec![] },
    ];
    let broken = app.scorecards().import_scorecards(req(&sync, tokio_stream::iter(messages))).await;
    let status = broken.expect_err("an empty message is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("after 2000 items were taken"), "{}", status.message());
    let again =
        vec![proto::ImportScorecardsRequest { items: fresh(0) }, proto::ImportScorecardsRequest { items: fresh(1000) }];
    let r =
        app.scorecards().import_scorecards(req(&sync, tokio_stream::iter(again))).await.expect("import").into_inner();
    assert_eq!((r.received, r.created, r.unchanged), (2000, 0, 2000));
}

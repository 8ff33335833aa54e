//! The group committer at the store, on SQLite and PostgreSQL: submissions
//! written together succeed or fail one by one. A submission the database
//! refuses (here: for an interview that does not exist, which the API never
//! sends) makes its batch's multi-row statements fail; the committer then
//! writes each submission of the batch in its own savepoint, so only that one
//! fails and the others are stored once, with one event each. And if the
//! committer dies, it is restarted: the batch in hand fails unacknowledged,
//! later submissions are served, a retry is stored once.

mod common;

use common::{Db, Org, TestApp, req, token};
use scorecard::domain::{Rating, Recommendation, ScorecardContent, new_id, now_micros};
use scorecard::store::{NewScorecard, Store, SubmitOutcome};
use tonic::Code;

async fn one_bad_submission_fails_alone(db: Db) {
    let app = TestApp::start(db).await;
    let org = Org::new(&app, "acme").await;
    let mut interviews = Vec::new();
    for i in 0..20 {
        let candidate = org.candidate(&app, &format!("ats-{i}")).await;
        interviews.push(org.interview(&app, &candidate, "ivan").await);
    }
    let store = Store::connect(&app.database_url, 4).await.expect("connect");
    let mut domain = Vec::new();
    for i in &interviews {
        let id = i.name.trim_start_matches("interviews/");
        domain.push(store.get_interview("acme", id).await.expect("read").expect("interview"));
    }
    let mut ghost = domain[0].clone();
    ghost.id = new_id();
    domain.push(ghost);
    let content = ScorecardContent {
        ratings: vec![
            Rating { competency: "api_design".into(), score: 3, evidence: "Designed paginated endpoints.".into() },
            Rating { competency: "collaboration".into(), score: 4, evidence: "Paired calmly under pressure.".into() },
        ],
        recommendation: Recommendation::Yes,
        summary: "Solid.".into(),
    };
    let ids: Vec<String> = domain.iter().map(|_| new_id()).collect();
    // All at once, so they meet in the committer's queue.
    let outcomes = futures_join(&store, &domain, &ids, &content).await;
    let ghost_outcome = outcomes.last().expect("ghost");
    assert!(ghost_outcome.is_err(), "the submission for a missing interview is refused: {ghost_outcome:?}");
    for (outcome, id) in outcomes.iter().zip(&ids).take(20) {
        match outcome {
            Ok(SubmitOutcome::Created(s)) => assert_eq!(&s.id, id),
            other => panic!("a good submission failed with the bad one: {other:?}"),
        }
    }
    for id in ids.iter().take(20) {
        let stored = store.get_scorecard("acme", id, 0).await.expect("read").expect("stored");
        assert_eq!(stored.content, content);
    }
    assert!(store.get_scorecard("acme", &ids[20], 0).await.expect("read").is_none(), "nothing of the bad one");
    let events = store.list_events("acme", 0, &["scorecard.submitted".to_string()], 1000).await.expect("events");
    assert_eq!(events.len(), 20, "one event per stored scorecard");
    store.close().await;
    app.stop().await;
}

async fn futures_join(
    store: &Store,
    interviews: &[scorecard::domain::Interview],
    ids: &[String],
    content: &ScorecardContent,
) -> Vec<Result<SubmitOutcome, scorecard::error::Error>> {
    let now = now_micros();
    let tasks: Vec<_> = interviews
        .iter()
        .zip(ids)
        .map(|(interview, id)| {
            let (store, interview, id, content) = (store.clone(), interview.clone(), id.clone(), content.clone());
            tokio::spawn(async move {
                store
                    .submit_scorecard(
                        "acme",
                        NewScorecard {
                            id: &id,
                            interview: &interview,
                            content: &content,
                            author: "ivan",
                            request_id: "",
                            request_hash: "",
                            now,
                        },
                    )
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task"));
    }
    outcomes
}

async fn a_committer_that_dies_is_restarted_and_loses_nothing_acknowledged(db: Db) {
    let app = TestApp::start(db).await;
    let id = format!("committer-{db:?}").to_lowercase();
    let org = Org::new(&app, &id).await;
    let first = org.candidate(&app, "c-1").await;
    let first = org.interview(&app, &first, "ivan").await;
    let second = org.candidate(&app, "c-2").await;
    let second = org.interview(&app, &second, "ivan").await;
    let ivan = token("ivan", &id, &["interviewer"]);

    let crash = scorecard::pauses::arm_panic("store.group_commit.batch", &id);
    let restarts = scorecard::metrics::global().task_restarts("group_commit");
    let lost = app.scorecards().submit_scorecard(req(&ivan, Org::submission(&first, "first-try"))).await;
    crash.reached().await;
    let status = lost.expect_err("the batch in hand when the committer died fails");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    // The restarted committer serves the next submission and the retry.
    let next = org.submit(&app, &second).await;
    assert_eq!(next.revision, 1);
    // (Counted before the new committer started, so before it served that.)
    assert!(scorecard::metrics::global().task_restarts("group_commit") > restarts, "the restart is counted");
    let retried = app
        .scorecards()
        .submit_scorecard(req(&ivan, Org::submission(&first, "first-try")))
        .await
        .expect("the retry is stored")
        .into_inner();
    let again = app
        .scorecards()
        .submit_scorecard(req(&ivan, Org::submission(&first, "first-try")))
        .await
        .expect("and replayed")
        .into_inner();
    assert_eq!(retried.name, again.name, "stored once");
}

on_both_databases!(db: one_bad_submission_fails_alone, a_committer_that_dies_is_restarted_and_loses_nothing_acknowledged);

//! Properties of the stored record after any sequence of requests, valid or
//! not: one scorecard per interview, revisions contiguous and each with its
//! ratings, no rating outside the rubric's scale or the interview's focus,
//! exactly one event per submission and per amendment, and every accepted
//! answer equal to what was sent.

mod common;

use common::{Db, Org, TestApp, rating, req, token};
use proptest::prelude::*;
use scorecard::proto::{self, Recommendation};
use sqlx::Connection;

#[derive(Debug, Clone)]
enum Op {
    Submit { interview: usize, scores: (i32, i32), request: Option<u8> },
    Amend { scorecard: usize, scores: (i32, i32), expected_revision: i32 },
    Schedule { candidate: usize },
}

fn op() -> impl Strategy<Value = Op> {
    // Scores from -1 to 6 on a 1..4 scale: about a third are out of range.
    let scores = (-1..7i32, -1..7i32);
    prop_oneof![
        4 => (0..12usize, scores.clone(), proptest::option::of(0..4u8))
            .prop_map(|(interview, scores, request)| Op::Submit { interview, scores, request }),
        3 => (0..12usize, scores, 0..4i32)
            .prop_map(|(scorecard, scores, expected_revision)| Op::Amend { scorecard, scores, expected_revision }),
        1 => (0..3usize).prop_map(|candidate| Op::Schedule { candidate }),
    ]
}

fn ratings(scores: (i32, i32)) -> Vec<proto::Rating> {
    vec![rating("api_design", scores.0), rating("collaboration", scores.1)]
}

fn pairs(card: &proto::Scorecard) -> Vec<(String, i32)> {
    card.ratings.iter().map(|r| (r.competency.clone(), r.score)).collect()
}

async fn run(db: Db, ops: Vec<Op>) {
    let app = TestApp::start(db).await;
    let org = Org::new(&app, "acme").await;
    let mut candidates = Vec::new();
    for n in 0..3 {
        candidates.push(org.candidate(&app, &format!("c-{n}")).await);
    }
    let mut interviews = Vec::new();
    for n in 0..4 {
        interviews.push(org.interview(&app, &candidates[n % 3], "ivan").await);
    }
    let sync = token("sync", "acme", &["integration"]);
    let mut scorecards: Vec<String> = Vec::new();
    for op in ops {
        match op {
            Op::Submit { interview, scores, request } => {
                let interview = &interviews[interview % interviews.len()];
                let sent = proto::SubmitScorecardRequest {
                    interview: interview.name.clone(),
                    ratings: ratings(scores),
                    recommendation: Recommendation::Yes as i32,
                    summary: String::new(),
                    request_id: request.map(|r| format!("req-{r}")).unwrap_or_default(),
                };
                if let Ok(card) = app.scorecards().submit_scorecard(req(&sync, sent.clone())).await {
                    let card = card.into_inner();
                    assert_eq!(card.revision, 1);
                    assert_eq!(card.ratings, sent.ratings, "an accepted submission is stored as sent");
                    if !scorecards.contains(&card.name) {
                        scorecards.push(card.name);
                    }
                }
            }
            Op::Amend { scorecard, scores, expected_revision } => {
                let Some(name) = scorecards.get(scorecard % scorecards.len().max(1)) else { continue };
                let sent = proto::AmendScorecardRequest {
                    name: name.clone(),
                    ratings: ratings(scores),
                    recommendation: Recommendation::No as i32,
                    summary: String::new(),
                    reason: "property test".into(),
                    revision: expected_revision,
                };
                if let Ok(card) = app.scorecards().amend_scorecard(req(&sync, sent.clone())).await {
                    assert_eq!(card.get_ref().ratings, sent.ratings);
                    assert!(expected_revision == 0 || card.get_ref().revision == expected_revision + 1);
                }
            }
            Op::Schedule { candidate } => {
                interviews.push(org.interview(&app, &candidates[candidate], "ivan").await);
            }
        }
    }

    // Read every current scorecard back through the API…
    let listed = app
        .scorecards()
        .list_scorecards(req(&org.admin, proto::ListScorecardsRequest { page_size: 1000, ..Default::default() }))
        .await
        .expect("list")
        .into_inner()
        .scorecards;
    assert_eq!(listed.len(), scorecards.len());
    for card in &listed {
        assert!(pairs(card).iter().all(|(_, s)| (1..=4).contains(s)));
    }

    // …and check the tables themselves.
    let count = |sql: &'static str| {
        let url = app.database_url.clone();
        async move {
            let value: i64 = match db {
                Db::Sqlite => {
                    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
                    sqlx::query_scalar(sql).fetch_one(&mut c).await.expect(sql)
                }
                Db::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&url).await.expect("postgres");
                    sqlx::query_scalar(sql).fetch_one(&mut c).await.expect(sql)
                }
            };
            value
        }
    };
    let checks: [(&str, &'static str); 7] = [
        (
            "one scorecard per interview",
            "select count(*) from (select interview_id from scorecards group by org_id, interview_id having count(*) > 1) x",
        ),
        (
            "revisions 1..=current, each once",
            "select count(*) from scorecards s where s.revision <> (select count(*) from scorecard_revisions v
               where v.org_id = s.org_id and v.scorecard_id = s.id and v.revision between 1 and s.revision)
               or exists (select 1 from scorecard_revisions v where v.org_id = s.org_id and v.scorecard_id = s.id
               and v.revision > s.revision)",
        ),
        (
            "every revision has ratings",
            "select count(*) from scorecard_revisions v where not exists (select 1 from ratings r
               where r.org_id = v.org_id and r.scorecard_id = v.scorecard_id and r.revision = v.revision)",
        ),
        ("no rating outside the 1..4 scale", "select count(*) from ratings where score < 1 or score > 4"),
        (
            "ratings only on focus competencies",
            "select count(*) from ratings where competency not in ('api_design', 'collaboration')",
        ),
        (
            "one scorecard.submitted per scorecard",
            "select (select count(*) from events where type = 'scorecard.submitted') - (select count(*) from scorecards)",
        ),
        (
            "one scorecard.amended per amendment",
            "select (select count(*) from events where type = 'scorecard.amended')
                  - (select cast(coalesce(sum(revision - 1), 0) as bigint) from scorecards)",
        ),
    ];
    for (what, sql) in checks {
        assert_eq!(count(sql).await, 0, "invariant broken: {what}");
    }
}

fn check(db: Db, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..30))| {
        runtime.block_on(run(db, ops));
    });
}

#[test]
fn sqlite_record_stays_consistent_under_any_request_sequence() {
    check(Db::Sqlite, 16);
}

#[test]
fn postgres_record_stays_consistent_under_any_request_sequence() {
    check(Db::Postgres, 8);
}

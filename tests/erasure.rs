//! Erasure is a fence, on SQLite and PostgreSQL: submissions and amendments
//! fired at the same moment as an EraseCandidate never leave free text about
//! the erased candidate once the erasure has returned, and a retry of a
//! submission made before the erasure still gets its scorecard back.

mod common;

use std::sync::Arc;

use common::{Org, TestApp, amendment, expect_code, rating, req};
use scorecard::proto;
use tonic::Code;

on_both_databases!(erasure_holds_against_concurrent_writes, a_retry_after_erasure_gets_its_scorecard);

/// Every revision of every scorecard about `candidate` holds no evidence,
/// summary or amendment reason.
async fn assert_no_free_text(app: &TestApp, org: &Org, candidate: &proto::Candidate, round: usize) {
    let mut scorecards = app.scorecards();
    let list = scorecards
        .list_scorecards(req(
            &org.admin,
            proto::ListScorecardsRequest { candidate: candidate.name.clone(), page_size: 100, ..Default::default() },
        ))
        .await
        .expect("list")
        .into_inner();
    assert!(!list.scorecards.is_empty(), "round {round}: the first scorecard is listed");
    for current in list.scorecards {
        for revision in 1..=current.revision {
            let s = scorecards
                .get_scorecard(req(&org.admin, proto::GetScorecardRequest { name: current.name.clone(), revision }))
                .await
                .expect("get revision")
                .into_inner();
            assert!(
                s.ratings.iter().all(|r| r.evidence.is_empty()) && s.summary.is_empty() && s.amend_reason.is_empty(),
                "round {round}: {} revision {revision} kept free text after the erasure: {s:?}",
                s.name
            );
        }
    }
}

async fn erasure_holds_against_concurrent_writes(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let (mut submitted, mut amended) = (0, 0);
    for round in 0..30 {
        let candidate = org.candidate(&app, &format!("c-{round}")).await;
        let first = org.interview(&app, &candidate, "ivan").await;
        let card = org.submit(&app, &first).await;
        let second = org.interview(&app, &candidate, "olga").await;
        // The three calls leave together.
        let start = Arc::new(tokio::sync::Barrier::new(3));
        let submit = {
            let (start, mut client, admin) = (start.clone(), app.scorecards(), org.admin.clone());
            tokio::spawn(async move {
                start.wait().await;
                client.submit_scorecard(req(&admin, Org::submission(&second, ""))).await
            })
        };
        let amend = {
            let (start, mut client, admin) = (start.clone(), app.scorecards(), org.admin.clone());
            let request = amendment(&card.name, vec![rating("api_design", 1)], "Second look at my notes");
            tokio::spawn(async move {
                start.wait().await;
                client.amend_scorecard(req(&admin, request)).await
            })
        };
        let erase = {
            let (start, mut client, admin) = (start.clone(), app.hiring(), org.admin.clone());
            let name = candidate.name.clone();
            tokio::spawn(async move {
                start.wait().await;
                client.erase_candidate(req(&admin, proto::EraseCandidateRequest { name })).await
            })
        };
        erase.await.expect("join").expect("erasure succeeds");
        for (what, result, count) in [
            ("submission", submit.await.expect("join").map(|_| ()), &mut submitted),
            ("amendment", amend.await.expect("join").map(|_| ()), &mut amended),
        ] {
            match result {
                Ok(()) => *count += 1,
                Err(status) => assert_eq!(
                    status.code(),
                    Code::FailedPrecondition,
                    "round {round}: a {what} racing an erasure is refused as erased, if at all: {status:?}"
                ),
            }
        }
        assert_no_free_text(&app, &org, &candidate, round).await;
    }
    println!("30 rounds: {submitted} submissions and {amended} amendments landed before their erasure");
}

async fn a_retry_after_erasure_gets_its_scorecard(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let candidate = org.candidate(&app, "ana").await;
    let interview = org.interview(&app, &candidate, "ivan").await;
    let later = org.interview(&app, &candidate, "olga").await;
    let request = Org::submission(&interview, "retry-me-1");
    let mut scorecards = app.scorecards();
    let first = scorecards.submit_scorecard(req(&org.admin, request.clone())).await.expect("submit").into_inner();
    app.hiring()
        .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name: candidate.name.clone() }))
        .await
        .expect("erase");

    // The client never saw the first answer and retries: same scorecard, its
    // free text gone with the erasure.
    let retry = scorecards.submit_scorecard(req(&org.admin, request)).await.expect("retry").into_inner();
    assert_eq!(retry.name, first.name);
    assert_eq!(retry.revision, 1);
    assert!(retry.ratings.iter().all(|r| r.evidence.is_empty()) && retry.summary.is_empty());

    // Anything new about the erased candidate is refused.
    expect_code(
        scorecards.submit_scorecard(req(&org.admin, Org::submission(&later, "a-new-one"))).await,
        Code::FailedPrecondition,
    );
    expect_code(
        scorecards
            .amend_scorecard(req(&org.admin, amendment(&first.name, vec![rating("api_design", 2)], "later")))
            .await,
        Code::FailedPrecondition,
    );
}

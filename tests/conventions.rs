//! What every service shares, end to end on SQLite and PostgreSQL: pagination
//! that visits every item once, oversized messages refused, health and
//! reflection without a token.

mod common;

use common::{Org, TestApp, expect_code, expect_violations, req, sample_rubric, token};
use scorecard::proto::{self};
use tonic::Code;

on_both_databases!(
    pagination_visits_every_item_once,
    oversized_messages_are_refused,
    health_and_reflection_need_no_token,
);

async fn pagination_visits_every_item_once(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let mut created = std::collections::HashSet::new();
    for n in 0..23 {
        created.insert(org.candidate(&app, &format!("ats-{n}")).await.name);
    }
    let mut seen = Vec::new();
    let mut token_ = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .hiring()
            .list_candidates(req(
                &org.admin,
                proto::ListCandidatesRequest { page_size: 5, page_token: token_.clone(), ..Default::default() },
            ))
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.candidates.len() <= 5);
        seen.extend(page.candidates.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token_ = page.next_page_token;
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23, "no item twice");
    assert_eq!(seen.iter().cloned().collect::<std::collections::HashSet<_>>(), created, "every item once");

    // Scorecards, with a filter, page through exactly the matching ones.
    let ana = org.candidate(&app, "ana").await;
    for n in 0..7 {
        let interviewer = format!("interviewer-{n}");
        let i = org.interview(&app, &ana, &interviewer).await;
        org.submit(&app, &i).await;
    }
    let mut seen = std::collections::HashSet::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .scorecards()
            .list_scorecards(req(
                &org.admin,
                proto::ListScorecardsRequest {
                    page_size: 3,
                    page_token: page_token.clone(),
                    candidate: ana.name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("page")
            .into_inner();
        for s in page.scorecards {
            assert_eq!(s.ratings.len(), 2, "ratings travel with each scorecard");
            assert!(seen.insert(s.name));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        // A token is bound to its list: reusing it with other filters is refused.
        let misuse = app
            .scorecards()
            .list_scorecards(req(
                &org.admin,
                proto::ListScorecardsRequest { page_token: page.next_page_token.clone(), ..Default::default() },
            ))
            .await;
        expect_violations(misuse, &["page_token"]);
        page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), 7);

    expect_violations(
        app.hiring()
            .list_candidates(req(&org.admin, proto::ListCandidatesRequest { page_size: -1, ..Default::default() }))
            .await,
        &["page_size"],
    );
    expect_violations(
        app.hiring()
            .list_candidates(req(
                &org.admin,
                proto::ListCandidatesRequest { page_size: 5, page_token: "garbage!".into(), ..Default::default() },
            ))
            .await,
        &["page_token"],
    );
    // An enormous page size is capped, not refused.
    let all = app
        .hiring()
        .list_candidates(req(&org.admin, proto::ListCandidatesRequest { page_size: i32::MAX, ..Default::default() }))
        .await
        .expect("capped")
        .into_inner();
    assert_eq!(all.candidates.len(), 24);
}

async fn oversized_messages_are_refused(app: TestApp) {
    let admin = token("root", "acme", &["admin"]);
    let mut huge = sample_rubric("Huge");
    huge.competencies[0].description = "x".repeat(5 * 1024 * 1024);
    let result = app.rubrics().create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(huge) })).await;
    let status = result.expect_err("a 5 MiB message is refused");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "unexpected status for an oversized message: {status:?}"
    );
    // A large but legal field is refused by validation with its field named.
    let mut long = sample_rubric("Long");
    long.competencies[0].description = "x".repeat(4_001);
    expect_violations(
        app.rubrics().create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(long) })).await,
        &["rubric.competencies[0].description"],
    );
}

async fn health_and_reflection_need_no_token(app: TestApp) {
    use tonic_health::pb::health_client::HealthClient;
    let mut health = HealthClient::new(app.channel.clone());
    let overall = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health without a token")
        .into_inner();
    assert_eq!(overall.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let scorecards = health
        .check(tonic_health::pb::HealthCheckRequest { service: "scorecard.v1.ScorecardService".into() })
        .await
        .expect("service health")
        .into_inner();
    assert_eq!(scorecards.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream =
        reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.expect("reflection").into_inner();
    let response = stream.message().await.expect("message").expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for service in ["scorecard.v1.RubricService", "scorecard.v1.ScorecardService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == service), "{service} missing from {names:?}");
    }

    // Everything else needs a token.
    let anonymous = app.rubrics().list_rubrics(proto::ListRubricsRequest::default()).await;
    expect_code(anonymous, Code::Unauthenticated);
}

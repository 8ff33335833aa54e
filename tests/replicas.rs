//! Two `scorecard` replicas on one PostgreSQL database behave as one service:
//! a submission through one is reflected at once in rankings, assessments and
//! events read through the other, a WatchRanking stream open on one hears
//! the other's submissions, and webhook events are delivered once, not once
//! per replica.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Db, Org, TestApp, amend, amendment, rating, req, token};
use scorecard::proto::{self, Recommendation};

async fn ranking(app: &TestApp, org: &Org) -> proto::Ranking {
    app.calibration()
        .get_ranking(req(&org.admin, proto::GetRankingRequest { job: org.job.name.clone(), ..Default::default() }))
        .await
        .expect("ranking")
        .into_inner()
}

fn count_for(r: &proto::Ranking, candidate: &proto::Candidate) -> i32 {
    r.entries.iter().find(|e| e.candidate == candidate.name).map_or(0, |e| e.scorecard_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ranking_watched_on_one_replica_follows_submissions_through_the_other() {
    let a = TestApp::start(Db::Postgres).await;
    let b = a.replica().await;
    let org = Org::new(&a, "acme").await;
    let ada = org.candidate(&a, "ada").await;
    let mut watch = b
        .calibration()
        .watch_ranking(req(&org.admin, proto::WatchRankingRequest { job: org.job.name.clone() }))
        .await
        .expect("watch on B")
        .into_inner();
    let first = watch.message().await.expect("stream").expect("first snapshot");
    assert!(first.entries.is_empty());

    // Submitted through A: B's stream sends a ranking with Ada in it.
    let interview = org.interview(&a, &ada, "ivan").await;
    org.submit(&a, &interview).await;
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let ranking = watch.message().await.expect("stream").expect("open");
            if count_for(&ranking, &ada) == 1 {
                return ranking;
            }
        }
    })
    .await
    .expect("B's stream hears A's submission");
    assert_eq!(heard.entries.len(), 1);
    drop(watch);
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_read_each_others_writes() {
    let a = TestApp::start(Db::Postgres).await;
    let b = a.replica().await;
    let org = Org::new(&a, "acme").await;
    let ada = org.candidate(&a, "ada").await;
    // Both replicas have loaded the organisation before the writes.
    assert!(ranking(&a, &org).await.entries.is_empty());
    assert!(ranking(&b, &org).await.entries.is_empty());

    // Written through A, read through B at once: no sleep, no polling.
    let first = org.interview(&a, &ada, "ivan").await;
    let card = org.submit(&a, &first).await;
    assert_eq!(count_for(&ranking(&b, &org).await, &ada), 1, "B sees A's submission");

    // Written through B, read through A.
    let second = org.interview(&b, &ada, "lena").await;
    org.submit(&b, &second).await;
    assert_eq!(count_for(&ranking(&a, &org).await, &ada), 2, "A sees B's submission");

    // An amendment through A changes what B reports.
    let before = ranking(&b, &org).await.entries[0].raw_mean;
    let ivan = token("ivan", "acme", &["interviewer"]);
    let ratings = vec![rating("api_design", 1), rating("collaboration", 1)];
    let request = proto::AmendScorecardRequest {
        recommendation: Recommendation::StrongNo as i32,
        ..amendment(&card.name, ratings, "re-read my notes")
    };
    amend(&a, &ivan, request).await;
    let after = ranking(&b, &org).await.entries[0].raw_mean;
    assert!(after < before, "B's raw mean moved with A's amendment: {before} -> {after}");

    // The event log is one log.
    let events = |app: &TestApp| {
        let admin = org.admin.clone();
        let mut client = app.events();
        async move {
            client
                .list_events(req(&admin, proto::ListEventsRequest { page_size: 1000, ..Default::default() }))
                .await
                .expect("events")
                .into_inner()
                .events
                .into_iter()
                .map(|e| (e.sequence, e.r#type))
                .collect::<Vec<_>>()
        }
    };
    let seen_by_a: Vec<_> = events(&a).await.into_iter().filter(|(_, t)| t.starts_with("scorecard.")).collect();
    let seen_by_b: Vec<_> = events(&b).await.into_iter().filter(|(_, t)| t.starts_with("scorecard.")).collect();
    assert_eq!(seen_by_a, seen_by_b);
    assert_eq!(seen_by_a.len(), 3, "two submissions and an amendment");
}

/// A replica that made many submissions itself, with one made through another
/// replica among them, catches up page by page: its own are skipped, the other
/// replica's is applied, and nothing is lost or counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_catches_up_past_a_burst_of_its_own_submissions() {
    let a = TestApp::start(Db::Postgres).await;
    let b = a.replica().await;
    let org = Org::new(&a, "acme").await;
    assert!(ranking(&a, &org).await.entries.is_empty());
    // More of A's own events than one catch-up page (1,000), with B's on the
    // second page.
    const OWN: usize = 1_100;
    let interviewers = ["ivan", "lena", "omar", "pia", "raj", "sun", "tom"];
    let mut submitted = 0;
    let mut from_b = None;
    while submitted < OWN {
        let candidate = org.candidate(&a, &format!("c{submitted}")).await;
        for who in interviewers.iter().take(OWN - submitted) {
            let interview = org.interview(&a, &candidate, who).await;
            org.submit(&a, &interview).await;
            submitted += 1;
        }
        if from_b.is_none() && submitted >= OWN - 50 {
            let candidate = org.candidate(&b, "from-b").await;
            let interview = org.interview(&b, &candidate, "ivan").await;
            org.submit(&b, &interview).await;
            from_b = Some(candidate);
        }
    }
    let full = common::full_ranking(&a, &org).await;
    assert!(full.next_page_token.is_empty(), "one page holds the job");
    let from_b = from_b.expect("B submitted");
    assert_eq!(count_for(&full, &from_b), 1, "A applied B's submission");
    let total: i32 = full.entries.iter().map(|e| e.scorecard_count).sum();
    assert_eq!(total as usize, OWN + 1, "every submission counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_each_webhook_event_once() {
    let a = TestApp::start(Db::Postgres).await;
    let b = a.replica().await;
    let org = Org::new(&a, "acme").await;

    let received: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let sink = sink.clone();
            async move {
                let id = headers.get("scorecard-event-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
                *sink.lock().unwrap().entry(id.to_string()).or_default() += 1;
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
    a.webhooks()
        .create_webhook(req(
            &org.admin,
            proto::CreateWebhookRequest {
                webhook: Some(proto::Webhook {
                    url,
                    event_types: vec!["interview.created".into()],
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("webhook");

    // Events written through both replicas; both run a dispatcher.
    let ada = org.candidate(&a, "ada").await;
    for n in 0..10 {
        let via = if n % 2 == 0 { &a } else { &b };
        org.interview(via, &ada, &format!("rater-{n}")).await;
    }
    let delivered = |count: usize| {
        let received = received.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while received.lock().unwrap().len() < count {
                assert!(tokio::time::Instant::now() < deadline, "not all delivered: {:?}", received.lock().unwrap());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    delivered(10).await;
    // Two later events, one through each replica. A webhook's deliveries go out
    // in sequence order, so once these arrived every earlier event was settled:
    // a second delivery of one would have come before them.
    org.interview(&b, &ada, "sentinel-b").await;
    org.interview(&a, &ada, "sentinel-a").await;
    delivered(12).await;
    let received = received.lock().unwrap().clone();
    println!(
        "two replicas, one webhook: {} events, deliveries per event {:?}",
        received.len(),
        received.values().collect::<Vec<_>>()
    );
    assert_eq!(received.len(), 12);
    assert!(received.values().all(|n| *n == 1), "each event delivered once: {received:?}");
}

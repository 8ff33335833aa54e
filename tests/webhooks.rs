//! Webhooks end to end, against a real HTTP receiver on loopback that fails,
//! times out and recovers: every event arrives, in order, signed; dead letters
//! are visible and can be sent again; private targets are refused.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{Db, Org, TestApp, expect_violations, req, test_settings, verifier};
use hmac::{Hmac, Mac};
use scorecard::proto;
use sha2::Sha256;

/// How the receiver answers a request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Accept,
    Fail,
    /// Processes the event, then answers only after the sender gave up.
    AcceptTooLate,
}

#[derive(Debug, Clone)]
struct Arrival {
    event_id: String,
    sequence: i64,
    signature_ok: bool,
    answer: Answer,
}

/// A webhook receiver whose answers follow a script.
struct Receiver {
    secret: Mutex<String>,
    arrivals: Mutex<Vec<Arrival>>,
    script: Box<dyn Fn(usize) -> Answer + Send + Sync>,
    always_fail: Mutex<bool>,
}

fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    // The recipe of docs/integration-guide.md: t=<seconds>,v1=<hex HMAC of "<t>.<body>">.
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let Ok(expected) = hex::decode(v1) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let fresh = t.parse::<i64>().is_ok_and(|t| (jsonwebtoken::get_current_timestamp() as i64 - t).abs() < 300);
    fresh && mac.verify_slice(&expected).is_ok()
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let secret = r.secret.lock().unwrap().clone();
    let n = r.arrivals.lock().unwrap().len();
    let answer = if *r.always_fail.lock().unwrap() { Answer::Fail } else { (r.script)(n) };
    let arrival = Arrival {
        event_id: header("scorecard-event-id"),
        sequence: json["sequence"].as_i64().unwrap_or(-1),
        signature_ok: verify(&secret, &header("scorecard-signature"), &body)
            && json["id"] == header("scorecard-event-id").as_str()
            && json["type"] == header("scorecard-event-type").as_str(),
        answer,
    };
    r.arrivals.lock().unwrap().push(arrival);
    match answer {
        Answer::Accept => StatusCode::NO_CONTENT,
        Answer::Fail => StatusCode::INTERNAL_SERVER_ERROR,
        Answer::AcceptTooLate => {
            tokio::time::sleep(Duration::from_secs(3)).await; // the sender's timeout is 2 s
            StatusCode::OK
        }
    }
}

async fn start_receiver(script: impl Fn(usize) -> Answer + Send + Sync + 'static) -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver {
        secret: Mutex::new(String::new()),
        arrivals: Mutex::new(Vec::new()),
        script: Box::new(script),
        always_fail: Mutex::new(false),
    });
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("receiver");
    });
    (receiver, url)
}

async fn create_webhook(app: &TestApp, org: &Org, url: &str, types: &[&str], r: &Receiver) -> proto::Webhook {
    let created = app
        .webhooks()
        .create_webhook(req(
            &org.admin,
            proto::CreateWebhookRequest {
                webhook: Some(proto::Webhook {
                    url: url.into(),
                    event_types: types.iter().map(|t| t.to_string()).collect(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("create webhook")
        .into_inner();
    assert!(created.secret.starts_with("whsec_"), "a generated secret is returned once");
    *r.secret.lock().unwrap() = created.secret.clone();
    created
}

async fn all_sequences(app: &TestApp, org: &Org, after: i64, types: &[&str]) -> Vec<i64> {
    let page = app
        .events()
        .list_events(req(
            &org.admin,
            proto::ListEventsRequest {
                after_sequence: after,
                page_size: 1000,
                event_types: types.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            },
        ))
        .await
        .expect("list events")
        .into_inner();
    page.events.iter().map(|e| e.sequence).collect()
}

on_both_databases!(db: every_event_arrives_in_order_and_signed_through_a_flaky_receiver, dead_letters_are_visible_and_redelivered);

async fn every_event_arrives_in_order_and_signed_through_a_flaky_receiver(db: Db) {
    let app = TestApp::start(db).await;
    let org = Org::new(&app, "acme").await;
    // Fails twice, answers one too late, fails again, then fails every fifth request.
    let (receiver, url) = start_receiver(|n| match n {
        0 | 1 | 3 => Answer::Fail,
        2 => Answer::AcceptTooLate,
        n if n % 5 == 0 => Answer::Fail,
        _ => Answer::Accept,
    })
    .await;
    let hook = create_webhook(&app, &org, &url, &[], &receiver).await;
    let start = hook.delivered_sequence;

    for i in 0..6 {
        let candidate = org.candidate(&app, &format!("c-{i}")).await;
        let interview = org.interview(&app, &candidate, &format!("rater-{}", i % 3)).await;
        if i % 2 == 0 {
            org.submit(&app, &interview).await;
        }
    }

    // Wait until the receiver has accepted every event recorded so far (overdue
    // and ranking events keep arriving for a moment; take what exists then).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let expected = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let expected = all_sequences(&app, &org, start, &[]).await;
        let accepted: BTreeSet<i64> =
            receiver.arrivals.lock().unwrap().iter().filter(|a| a.answer != Answer::Fail).map(|a| a.sequence).collect();
        if expected.iter().all(|s| accepted.contains(s)) && !expected.is_empty() {
            break expected;
        }
        assert!(tokio::time::Instant::now() < deadline, "not every event arrived: {expected:?} vs {accepted:?}");
    };

    let arrivals = receiver.arrivals.lock().unwrap().clone();
    assert!(arrivals.iter().all(|a| a.signature_ok), "every signature verifies");
    assert!(arrivals.iter().all(|a| a.event_id == format!("events/{}", a.sequence)));
    // In order: each event is first processed after every earlier one was.
    let mut first_processed: Vec<i64> = Vec::new();
    let mut processed: BTreeMap<i64, usize> = BTreeMap::new();
    for a in arrivals.iter().filter(|a| a.answer != Answer::Fail) {
        let count = processed.entry(a.sequence).or_default();
        if *count == 0 {
            first_processed.push(a.sequence);
        }
        *count += 1;
    }
    let mut sorted = first_processed.clone();
    sorted.sort_unstable();
    assert_eq!(first_processed, sorted, "events are processed in sequence order");
    let duplicates: usize = processed.values().map(|c| c - 1).sum();
    let retried = arrivals.len() - processed.len();
    println!(
        "webhook ({db:?}): {} events, {} requests sent, {} retried, {} delivered, {} duplicates seen by the receiver \
         (de-duplicated by event id)",
        expected.len(),
        arrivals.len(),
        retried,
        processed.len(),
        duplicates
    );
    assert!(processed.len() >= expected.len());
    assert!(retried >= 4, "the script fails or times out at least four requests");
    assert!(duplicates >= 1, "the too-late answer makes the sender send that event again");

    // The API agrees: nothing retrying, the place in the log is at the end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = app
            .webhooks()
            .get_webhook(req(&org.admin, proto::GetWebhookRequest { name: hook.name.clone() }))
            .await
            .expect("get webhook")
            .into_inner();
        assert!(now.secret.is_empty(), "the secret is never returned again");
        if now.delivered_sequence >= *expected.last().unwrap() {
            assert_eq!(now.dead_letter_count, 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook place {} short of {expected:?}",
            now.delivered_sequence
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = app
        .webhooks()
        .list_deliveries(req(
            &org.admin,
            proto::ListDeliveriesRequest {
                webhook: hook.name.clone(),
                state: proto::delivery::State::Delivered as i32,
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .expect("list deliveries")
        .into_inner()
        .deliveries;
    assert!(delivered.len() >= expected.len());
    assert!(delivered.iter().any(|d| d.attempts > 1), "retried deliveries show their attempts");

    // Pages of two, without a state filter, visit every delivery once, newest first.
    let mut paged = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .webhooks()
            .list_deliveries(req(
                &org.admin,
                proto::ListDeliveriesRequest {
                    webhook: hook.name.clone(),
                    page_size: 2,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("page of deliveries")
            .into_inner();
        assert!(page.deliveries.len() <= 2);
        paged.extend(
            page.deliveries.iter().map(|d| {
                d.event.strip_prefix("events/").and_then(|n| n.parse::<i64>().ok()).expect("events/{sequence}")
            }),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert!(paged.len() >= delivered.len(), "{} paged, {} delivered", paged.len(), delivered.len());
    assert!(paged.windows(2).all(|w| w[0] > w[1]), "newest first, each once: {paged:?}");
}

async fn dead_letters_are_visible_and_redelivered(db: Db) {
    let mut settings = test_settings();
    settings.webhooks.retry_window = Duration::from_millis(800);
    let app = TestApp::start_configured(db, verifier(), settings).await;
    let org = Org::new(&app, "acme").await;
    let (receiver, url) = start_receiver(|_| Answer::Accept).await;
    *receiver.always_fail.lock().unwrap() = true;
    let hook = create_webhook(&app, &org, &url, &["interview.created"], &receiver).await;
    let candidate = org.candidate(&app, "c-1").await;
    let first = org.interview(&app, &candidate, "ivan").await;

    let list = |state: proto::delivery::State| {
        let app = &app;
        let admin = org.admin.clone();
        let name = hook.name.clone();
        async move {
            app.webhooks()
                .list_deliveries(req(
                    &admin,
                    proto::ListDeliveriesRequest { webhook: name, state: state as i32, ..Default::default() },
                ))
                .await
                .expect("list deliveries")
                .into_inner()
                .deliveries
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let dead = list(proto::delivery::State::DeadLetter).await;
        if !dead.is_empty() {
            break dead;
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter after the retry window");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.len(), 1);
    assert!(dead[0].attempts >= 2, "retried before giving up: {:?}", dead[0]);
    assert!(dead[0].last_error.contains("500"), "{:?}", dead[0]);
    let seen = app
        .webhooks()
        .get_webhook(req(&org.admin, proto::GetWebhookRequest { name: hook.name.clone() }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(seen.dead_letter_count, 1);
    assert!(seen.last_error.contains("500"));

    // The receiver is fixed: the dead letter goes out again on request, and
    // later events flow.
    *receiver.always_fail.lock().unwrap() = false;
    app.webhooks()
        .redeliver_event(req(
            &org.admin,
            proto::RedeliverEventRequest { webhook: hook.name.clone(), event: dead[0].event.clone() },
        ))
        .await
        .expect("redeliver");
    let second = org.interview(&app, &candidate, "lena").await;
    let wanted = all_sequences(&app, &org, 0, &["interview.created"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let accepted: BTreeSet<i64> = receiver
            .arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.answer == Answer::Accept)
            .map(|a| a.sequence)
            .collect();
        if wanted.iter().all(|s| accepted.contains(s)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{wanted:?} not all accepted: {accepted:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(list(proto::delivery::State::DeadLetter).await.is_empty(), "the dead letter was delivered");
    assert!(!first.name.is_empty() && !second.name.is_empty());

    // Events before the webhook existed cannot be pushed to it; bad names are named.
    expect_violations(
        app.webhooks()
            .redeliver_event(req(
                &org.admin,
                proto::RedeliverEventRequest { webhook: hook.name.clone(), event: "events/zero".into() },
            ))
            .await,
        &["event"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_and_bad_registrations_are_refused() {
    let mut settings = test_settings();
    settings.webhooks.allow_private = false;
    let app = TestApp::start_configured(Db::Sqlite, verifier(), settings).await;
    let org = Org::new(&app, "acme").await;
    let create = |url: &str, types: Vec<String>, secret: &str| {
        let app = &app;
        let admin = org.admin.clone();
        let webhook =
            proto::Webhook { url: url.into(), event_types: types, secret: secret.into(), ..Default::default() };
        async move {
            app.webhooks().create_webhook(req(&admin, proto::CreateWebhookRequest { webhook: Some(webhook) })).await
        }
    };
    for url in [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "http://8.8.8.8/hook",
        "https://user:secret@8.8.8.8/hook",
        "gopher://8.8.8.8/",
        "",
    ] {
        expect_violations(create(url, vec![], "").await, &["webhook.url"]);
    }
    expect_violations(
        create("https://8.8.8.8/hook", vec!["scorecard.deleted".into()], "short").await,
        &["webhook.event_types[0]", "webhook.secret"],
    );
    // A public address is accepted (nothing is sent until an event happens).
    let ok = create("https://8.8.8.8/hook", vec!["scorecard.submitted".into()], "a-secret-of-at-least-24-chars")
        .await
        .expect("public https target")
        .into_inner();
    assert_eq!(ok.secret, "a-secret-of-at-least-24-chars");
    let deleted =
        app.webhooks().delete_webhook(req(&org.admin, proto::DeleteWebhookRequest { name: ok.name.clone() })).await;
    assert!(deleted.is_ok());
    common::expect_code(
        app.webhooks().get_webhook(req(&org.admin, proto::GetWebhookRequest { name: ok.name })).await,
        tonic::Code::NotFound,
    );
}

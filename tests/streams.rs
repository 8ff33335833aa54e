//! Server streams are bounded (issue 16): one token holds at most its quota of
//! open streams and the server its total, past which a new stream is refused
//! with RESOURCE_EXHAUSTED and a RetryInfo; a closed stream gives its place
//! back; and an organisation's idle streams share one event feed, so 100 of
//! them cost one look at the database a second, not 100. (Under 200 open
//! streams in all: that is HTTP/2's default cap on one connection.) One test per
//! database, run one after the other: the feed's look counter is process-wide.

mod common;

use std::time::Duration;

use common::{Db, Org, TestApp, req, test_settings, token, verifier};
use scorecard::proto;
use tonic::Code;
use tonic_types::StatusExt;

async fn watch(app: &TestApp, token: &str) -> Result<tonic::Streaming<proto::Event>, tonic::Status> {
    app.events()
        .watch_events(req(token, proto::WatchEventsRequest { after_sequence: 0, event_types: Vec::new() }))
        .await
        .map(|r| r.into_inner())
}

async fn streams_are_bounded_and_share_one_feed(db: Db) {
    let mut settings = test_settings();
    settings.streams = scorecard::api::streams::StreamSettings { per_caller: 3, total: 110 };
    let app = TestApp::start_configured(db, verifier(), settings).await;
    let org = Org::new(&app, "acme").await;

    // Per caller: the fourth stream of one token is refused, with a delay.
    let ada = token("ada", "acme", &["recruiter"]);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(watch(&app, &ada).await.expect("within the quota"));
    }
    let refused = watch(&app, &ada).await.expect_err("past the quota");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let retry = refused.get_details_retry_info().expect("a RetryInfo detail");
    assert!(retry.retry_delay.is_some_and(|d| d > Duration::ZERO));
    // Another caller is not affected.
    let bob = token("bob", "acme", &["recruiter"]);
    let bobs = watch(&app, &bob).await.expect("another caller's stream");
    // A closed stream gives its place back (once the server sees it closed).
    drop(open.pop());
    let mut reopened = None;
    for _ in 0..100 {
        match watch(&app, &ada).await {
            Ok(stream) => {
                reopened = Some(stream);
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(reopened.is_some(), "the closed stream's place was given back");
    drop((open, bobs, reopened));

    // Many idle streams of one organisation, each from its own user (the
    // per-caller quota is 3): the feed they share looks once a second.
    let mut idle = Vec::new();
    for n in 0..100 {
        idle.push(watch(&app, &token(&format!("user-{n}"), "acme", &["recruiter"])).await.expect("idle stream"));
    }
    // Past the total of 110 (the closed ones above may still be counted for a
    // moment): the server refuses.
    let mut refused_total = None;
    for n in 100..130 {
        match watch(&app, &token(&format!("user-{n}"), "acme", &["recruiter"])).await {
            Ok(stream) => idle.push(stream),
            Err(status) => {
                refused_total = Some(status);
                break;
            }
        }
    }
    let refused_total = refused_total.expect("the total is enforced");
    assert!(idle.len() <= 110, "{} streams open", idle.len());
    assert_eq!(refused_total.code(), Code::ResourceExhausted);
    let before = scorecard::metrics::global().event_feed_polls();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let looks = scorecard::metrics::global().event_feed_polls() - before;
    assert!((1..=8).contains(&looks), "{db:?}: 100 idle streams looked {looks} times in 3 s (one feed: about 3)");

    // The shared feed still delivers: a new event reaches an idle stream.
    let mut first = idle.swap_remove(0);
    let candidate = org.candidate(&app, "c-1").await;
    let created = org.interview(&app, &candidate, "ivan").await;
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let event = first.message().await.expect("stream").expect("open");
            if event.resource == created.name {
                return event;
            }
        }
    })
    .await
    .expect("the event arrives");
    assert_eq!(event.r#type, "interview.created");
    drop((first, idle));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_bounded_and_share_one_feed_on_both_databases() {
    streams_are_bounded_and_share_one_feed(Db::Sqlite).await;
    streams_are_bounded_and_share_one_feed(Db::Postgres).await;
}

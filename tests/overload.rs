//! Overload behaviour end to end: per-token rate limit with retry info,
//! deadlines honoured with the work cancelled, a concurrency cap answered at
//! once instead of queueing.

mod common;

use std::time::Duration;

use common::{Db, Org, TestApp, expect_code, req, test_settings, token, verifier};
use scorecard::proto;
use tonic::Code;
use tonic_types::StatusExt;

async fn app_with(guard: scorecard::server::guard::GuardSettings) -> TestApp {
    let mut settings = test_settings();
    settings.guard = guard;
    TestApp::start_configured(Db::Sqlite, verifier(), settings).await
}

/// An import stream that sends `items` and then stays open until dropped.
fn held_open_import(
    items: Vec<proto::ImportItem>,
) -> (
    tokio::sync::mpsc::Sender<proto::ImportScorecardsRequest>,
    impl tokio_stream::Stream<Item = proto::ImportScorecardsRequest>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.try_send(proto::ImportScorecardsRequest { items }).expect("queue first message");
    (tx, tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn candidate_item(external_id: &str) -> proto::ImportItem {
    proto::ImportItem {
        item: Some(proto::import_item::Item::Candidate(proto::ImportCandidate {
            external_id: external_id.into(),
            display_name: "Held".into(),
            email: String::new(),
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_is_rate_limited_with_a_retry_delay() {
    let app =
        app_with(scorecard::server::guard::GuardSettings { rate_per_second: 5.0, burst: 5.0, ..Default::default() })
            .await;
    let admin = token("root", "acme", &["admin"]);
    let (mut ok, mut limited) = (0, Vec::new());
    for _ in 0..12 {
        match app.hiring().list_jobs(req(&admin, proto::ListJobsRequest::default())).await {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                let retry = status.get_details_retry_info().and_then(|r| r.retry_delay).expect("retry info");
                assert!(retry > Duration::ZERO && retry <= Duration::from_secs(1), "{retry:?}");
                limited.push(retry);
            }
        }
    }
    println!("rate limit: {ok} allowed, {} refused with RESOURCE_EXHAUSTED and retry info", limited.len());
    assert!((5..=7).contains(&ok), "the burst of 5 (and what refills meanwhile) passes: {ok}");
    assert!(!limited.is_empty());
    // Another user of the same organisation has a bucket of their own.
    let other = token("rita", "acme", &["recruiter"]);
    app.hiring().list_jobs(req(&other, proto::ListJobsRequest::default())).await.expect("other token");
    // After the delay the first token may call again.
    tokio::time::sleep(*limited.last().unwrap() + Duration::from_millis(20)).await;
    app.hiring().list_jobs(req(&admin, proto::ListJobsRequest::default())).await.expect("after the delay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_are_honoured_and_the_work_cancelled() {
    let app = app_with(Default::default()).await;
    let org = Org::new(&app, "acme").await;

    // An import still streaming when its deadline passes: the server answers
    // (before the client's own timer) and nothing of it is kept.
    let (_keep_open, stream) = held_open_import(vec![candidate_item("late-1")]);
    let mut call = req(&org.admin, stream);
    call.set_timeout(Duration::from_millis(400));
    let started = std::time::Instant::now();
    let status = expect_code(app.scorecards().import_scorecards(call).await, Code::DeadlineExceeded);
    assert!(status.message().contains("deadline passed"), "the server's answer: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered when the deadline passed, not later");
    let candidates = app
        .hiring()
        .list_candidates(req(&org.admin, proto::ListCandidatesRequest::default()))
        .await
        .expect("list")
        .into_inner()
        .candidates;
    assert!(candidates.is_empty(), "the cancelled import wrote nothing: {candidates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_refuses_at_once_and_recovers() {
    let app = app_with(scorecard::server::guard::GuardSettings { max_concurrent: 2, ..Default::default() }).await;
    let admin = token("root", "acme", &["admin"]);
    // Two imports hold both slots.
    let hold = |n: usize| {
        let (keep_open, stream) = held_open_import(vec![candidate_item(&format!("held-{n}"))]);
        let mut client = app.scorecards();
        let call = req(&admin, stream);
        (keep_open, tokio::spawn(async move { client.import_scorecards(call).await }))
    };
    let mut held: Vec<_> = (0..2).map(hold).collect();
    // Wait until both imports hold their slots, which a probe shows by being
    // refused. A probe that got a slot may have made an import arriving
    // meanwhile be refused at once: that import is started again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.hiring().list_jobs(req(&admin, proto::ListJobsRequest::default())).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "the imports never took both slots");
        for (n, slot) in held.iter_mut().enumerate() {
            if slot.1.is_finished() {
                *slot = hold(n);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    let status = expect_code(
        app.hiring().list_jobs(req(&admin, proto::ListJobsRequest::default())).await,
        Code::ResourceExhausted,
    );
    assert!(started.elapsed() < Duration::from_secs(1), "refused at once");
    assert!(status.get_details_retry_info().is_some());
    // Closing the streams finishes the imports and frees the slots.
    for (keep_open, call) in held {
        drop(keep_open);
        let response = call.await.expect("join").expect("import").into_inner();
        assert_eq!(response.created, 1);
    }
    app.hiring().list_jobs(req(&admin, proto::ListJobsRequest::default())).await.expect("served again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_database_pool_is_unavailable_not_a_hang() {
    use sqlx::Connection;
    // A database of its own, and a server on it with a single connection that
    // waits at most half a second for it.
    let base = TestApp::start(Db::Postgres).await;
    let org = Org::new(&base, "acme").await;
    let store =
        scorecard::store::Store::connect_with(&base.database_url, 1, Duration::from_millis(500)).await.expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(scorecard::server::serve(
        listener,
        None,
        store,
        std::sync::Arc::new(verifier()),
        test_settings(),
        async {
            let _ = stopped.await;
        },
    ));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut hiring = proto::hiring_service_client::HiringServiceClient::new(channel.clone());
    hiring.list_jobs(req(&org.admin, proto::ListJobsRequest::default())).await.expect("served");

    // Someone else locks the jobs table: a list of jobs takes the only
    // connection and waits on the lock.
    let mut locker = sqlx::PgConnection::connect(&base.database_url).await.expect("connect");
    sqlx::raw_sql("begin; lock table jobs in access exclusive mode").execute(&mut locker).await.expect("lock");
    let mut blocked_client = hiring.clone();
    let admin = org.admin.clone();
    let blocked =
        tokio::spawn(async move { blocked_client.list_jobs(req(&admin, proto::ListJobsRequest::default())).await });
    // Wait until the blocked request is queued on the lock (it holds the only connection).
    let mut watcher = sqlx::PgConnection::connect(&base.database_url).await.expect("connect");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the list of jobs never waited on the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The next request finds no connection: UNAVAILABLE after the wait, not a hang.
    let started = std::time::Instant::now();
    let mut rubrics = proto::rubric_service_client::RubricServiceClient::new(channel);
    let status = expect_code(
        rubrics.list_rubrics(req(&org.admin, proto::ListRubricsRequest::default())).await,
        Code::Unavailable,
    );
    let waited = started.elapsed();
    println!("pool exhausted: UNAVAILABLE after {waited:?}: {}", status.message());
    assert!(waited < Duration::from_secs(3), "answered after the acquire timeout: {waited:?}");

    // The lock goes away: the blocked request completes, and the server serves again.
    sqlx::raw_sql("rollback").execute(&mut locker).await.expect("unlock");
    blocked.await.expect("join").expect("the blocked request completes");
    rubrics.list_rubrics(req(&org.admin, proto::ListRubricsRequest::default())).await.expect("served again");
    let _ = stop.send(());
}

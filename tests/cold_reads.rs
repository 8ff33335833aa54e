//! Concurrent first reads of an organisation share one load: a server
//! restarted on stored scorecards answers a burst of rankings with a single
//! load and fit of the organisation (its warm-up included), not one per reader;
//! and a first reader that gives up leaves its load to the next.
//! One test that runs SQLite and then PostgreSQL, so that no other test in this
//! binary loads organisations while the process-wide load counter is read.

mod common;

use std::time::Duration;

use common::{Db, Org, TestApp, req, token};
use scorecard::proto;

async fn a_burst_of_cold_reads_loads_the_organisation_once(db: Db) {
    let app = TestApp::start(db).await;
    let org = Org::new(&app, "acme").await;
    for n in 0..6 {
        let candidate = org.candidate(&app, &format!("c-{n}")).await;
        let interview = org.interview(&app, &candidate, &format!("rater-{n}")).await;
        org.submit(&app, &interview).await;
    }
    // Without its snapshot, so that the restart loads from the scorecards
    // (a restore is shared the same way: it runs inside the same one load).
    let no_snapshots = scorecard::server::Settings { calibration_snapshots: false, ..common::test_settings() };
    // Counted from before the restart: the warm-up may finish its load before
    // the first reader asks (then the readers are served by it, and the count
    // is still one).
    let before = scorecard::metrics::global().org_loads();
    let app = app.restart_with(no_snapshots).await;
    let recruiter = token("rita", "acme", &["recruiter"]);
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let (mut client, recruiter, job) = (app.calibration(), recruiter.clone(), org.job.name.clone());
            tokio::spawn(async move {
                client.get_ranking(req(&recruiter, proto::GetRankingRequest { job, ..Default::default() })).await
            })
        })
        .collect();
    for reader in readers {
        let ranking = reader.await.expect("join").expect("ranking").into_inner();
        assert_eq!(ranking.entries.len(), 6);
    }
    let loads = scorecard::metrics::global().org_loads() - before;
    assert_eq!(loads, 1, "{db:?}: 16 cold readers and the warm-up share one load");
    app.stop().await;
}

/// The load a first reader starts outlives the reader: when its deadline
/// passes mid-load (a large organisation takes longer to load than a call may
/// wait), the next reader is served by that same load, not by a new one.
async fn a_first_reader_that_gives_up_leaves_its_load_to_the_next(db: Db) {
    let app = TestApp::start(db).await;
    let id = common::org_id("abandoned", &app);
    let org = Org::new(&app, &id).await;
    // Restarted with no scorecard of this organisation's stored, the warm-up
    // leaves it alone: its first reader's call loads it.
    let app = app.restart().await;
    let recruiter = token("rita", &id, &["recruiter"]);
    let before = scorecard::metrics::global().org_loads();
    let pause = scorecard::pauses::arm("calibrator.load.read", &id);
    let ranking_request =
        || req(&recruiter, proto::GetRankingRequest { job: org.job.name.clone(), ..Default::default() });
    let mut impatient = ranking_request();
    impatient.set_timeout(Duration::from_millis(300));
    let status = app.calibration().get_ranking(impatient).await.expect_err("the load is held at its pause point");
    assert!(
        matches!(status.code(), tonic::Code::DeadlineExceeded | tonic::Code::Cancelled),
        "{db:?}: the first reader gave up: {status:?}"
    );
    pause.reached().await;
    let patient = {
        let (mut client, request) = (app.calibration(), ranking_request());
        tokio::spawn(async move { client.get_ranking(request).await })
    };
    pause.release();
    let ranking = patient.await.expect("join").expect("the next reader is served").into_inner();
    assert!(ranking.entries.is_empty(), "{db:?}: nobody is ranked yet");
    let loads = scorecard::metrics::global().org_loads() - before;
    assert_eq!(loads, 1, "{db:?}: the abandoned reader's load served the next reader");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_cold_reads_loads_the_organisation_once_on_both_databases() {
    a_burst_of_cold_reads_loads_the_organisation_once(Db::Sqlite).await;
    a_burst_of_cold_reads_loads_the_organisation_once(Db::Postgres).await;
    a_first_reader_that_gives_up_leaves_its_load_to_the_next(Db::Sqlite).await;
    a_first_reader_that_gives_up_leaves_its_load_to_the_next(Db::Postgres).await;
}

//! Concurrent first reads of an organisation share one load: a server
//! restarted on stored scorecards answers a burst of rankings with a single
//! load and fit of the organisation (its warm-up included), not one per reader.
//! One test that runs SQLite and then PostgreSQL, so that no other test in this
//! binary loads organisations while the process-wide load counter is read.

mod common;

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
    let app = app.restart().await;
    let before = scorecard::metrics::global().org_loads();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_cold_reads_loads_the_organisation_once_on_both_databases() {
    a_burst_of_cold_reads_loads_the_organisation_once(Db::Sqlite).await;
    a_burst_of_cold_reads_loads_the_organisation_once(Db::Postgres).await;
}

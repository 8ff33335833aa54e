//! Calibration snapshots: a server that stops writes each organisation's
//! state, and the next start serves from it, exactly as before the restart,
//! instead of reading every scorecard and fitting afresh. Changes made after
//! the snapshot are replayed; an erasure deletes it and one older than an
//! erasure is never used; a damaged one is passed over for a load.
//! One test that runs SQLite and then PostgreSQL, so that no other test in this
//! binary loads or restores organisations while the process-wide counters are read.

mod common;

use common::{Db, Org, TestApp, count, execute, full_ranking, rate, req, test_settings};
use scorecard::proto;

/// (loads, restores) since `before`.
fn since(before: (u64, u64)) -> (u64, u64) {
    let m = scorecard::metrics::global();
    (m.org_loads() - before.0, m.snapshot_restores() - before.1)
}

fn counters() -> (u64, u64) {
    let m = scorecard::metrics::global();
    (m.org_loads(), m.snapshot_restores())
}

async fn snapshots_carry_the_state_over_a_restart(db: Db) {
    let app = TestApp::start(db).await;
    let org = Org::new(&app, "acme").await;
    let mut candidates = Vec::new();
    for n in 0..8 {
        let c = org.candidate(&app, &format!("c{n}")).await;
        for (r, rater) in ["ana", "ben", "cy"].iter().enumerate() {
            rate(&app, &org, &c, rater, 1 + ((n * 3 + r * 2) % 4) as i32).await;
        }
        candidates.push(c);
    }
    let before = full_ranking(&app, &org).await;
    assert_eq!(before.entries.len(), 8);

    // A graceful stop writes the snapshot; the next start serves from it,
    // every number as it was.
    let at = counters();
    let app = app.restart().await;
    let after = full_ranking(&app, &org).await;
    assert_eq!(after.entries, before.entries, "{db:?}: the restored ranking is the one served before the stop");
    assert_eq!(since(at), (0, 1), "{db:?}: restored, not loaded");
    assert_eq!(count(&app, "select count(*) from calibration_snapshots where org_id = 'acme'").await, 1);
    assert!(count(&app, "select count(*) from calibration_snapshot_parts where org_id = 'acme'").await >= 1);
    if db == Db::Postgres {
        let uncompressed = "select count(*) from pg_attribute where attrelid = 'calibration_snapshot_parts'::regclass
                            and attname = 'body' and attstorage = 'e'";
        assert_eq!(count(&app, uncompressed).await, 1, "parts are stored out of line, not compressed");
    }

    // Changes made while no snapshot was written (a server with snapshots
    // off stands in for one that crashed) are replayed onto the snapshot.
    let off = scorecard::server::Settings { calibration_snapshots: false, ..test_settings() };
    let app = app.restart_with(off.clone()).await;
    let late = org.candidate(&app, "late").await;
    rate(&app, &org, &late, "ana", 4).await;
    rate(&app, &org, &candidates[0], "dee", 2).await;
    let live = full_ranking(&app, &org).await;
    let at = counters();
    let app = app.restart_with(test_settings()).await;
    let replayed = full_ranking(&app, &org).await;
    assert_eq!(since(at), (0, 1), "{db:?}: restored and caught up, not loaded");
    let shape = |r: &proto::Ranking| {
        let mut v: Vec<(String, i32, i64)> = r
            .entries
            .iter()
            .map(|e| (e.candidate.clone(), e.scorecard_count, (e.raw_mean * 1e6).round() as i64))
            .collect();
        v.sort();
        v
    };
    assert_eq!(shape(&replayed), shape(&live), "{db:?}: every change since the snapshot is in the restored state");
    assert_eq!(replayed.entries.len(), 9);

    // An erasure deletes the snapshot in its own transaction…
    app.hiring()
        .erase_candidate(req(&org.admin, proto::EraseCandidateRequest { name: candidates[1].name.clone() }))
        .await
        .expect("erase");
    assert_eq!(count(&app, "select count(*) from calibration_snapshots where org_id = 'acme'").await, 0);
    assert_eq!(count(&app, "select count(*) from calibration_snapshot_parts where org_id = 'acme'").await, 0);
    // …and a snapshot older than an erasure is never read, whoever wrote it.
    let app = app.restart_with(off.clone()).await;
    full_ranking(&app, &org).await; // its start-up load done before the counters are read
    // (The stop before may have written a snapshot of a state loaded after the
    // erasure, if a background read reloaded it: replaced here by a stale one.)
    execute(&app, "delete from calibration_snapshot_parts where org_id = 'acme'").await;
    execute(&app, "delete from calibration_snapshots where org_id = 'acme'").await;
    execute(
        &app,
        "insert into calibration_snapshots (org_id, generation, sequence, format, parts, bytes, created_at)
         values ('acme', 'stale', 0, 1, 0, 0, 0)",
    )
    .await;
    let at = counters();
    let app = app.restart_with(test_settings()).await;
    assert_eq!(full_ranking(&app, &org).await.entries.len(), 9);
    assert_eq!(since(at), (1, 0), "{db:?}: loaded from the scorecards, the stale snapshot passed over");

    // A snapshot whose parts are gone (or damaged) is passed over for a load.
    let app = app.restart().await; // writes a snapshot of the state after the erasure
    assert_eq!(count(&app, "select count(*) from calibration_snapshots where org_id = 'acme'").await, 1);
    let restored = full_ranking(&app, &org).await;
    let app = app.restart_with(off.clone()).await;
    full_ranking(&app, &org).await; // its start-up load done before the counters are read
    execute(&app, "delete from calibration_snapshot_parts").await;
    let at = counters();
    let app = app.restart_with(test_settings()).await;
    let loaded = full_ranking(&app, &org).await;
    assert_eq!(since(at), (1, 0), "{db:?}: the damaged snapshot was not used");
    assert_eq!(shape(&loaded), shape(&restored));

    // A stopped server starts no background work: the refit that a last
    // change scheduled (half a second on) does not run after the stop, where
    // it would load and publish into a database the next server serves.
    rate(&app, &org, &candidates[2], "eve", 3).await;
    app.stop().await;
    let refits = scorecard::metrics::global().refits_landed();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(scorecard::metrics::global().refits_landed(), refits, "{db:?}: no refit after the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_carry_the_state_over_a_restart_on_both_databases() {
    snapshots_carry_the_state_over_a_restart(Db::Sqlite).await;
    snapshots_carry_the_state_over_a_restart(Db::Postgres).await;
}

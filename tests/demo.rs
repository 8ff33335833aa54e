//! `scorecard demo` as a newcomer runs it: a seeded organisation, served, whose
//! printed token and job work at once.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::req;
use scorecard::proto::{self, calibration_service_client::CalibrationServiceClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_a_calibrated_organisation() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scorecard"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--http-listen", "127.0.0.1:0"])
        .env_remove("SCORECARD_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start demo");
    let stdout = child.stdout.take().expect("stdout");
    let (token, job, compliance) = tokio::task::spawn_blocking(move || {
        let (mut token, mut job, mut compliance) = (String::new(), String::new(), String::new());
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read");
            if let Some(t) = line.strip_prefix("SCORECARD_TOKEN=")
                && line.contains("compliance impact")
            {
                compliance = t.split_whitespace().next().unwrap_or_default().to_string();
            }
            if let Some(t) = line.strip_prefix("export SCORECARD_TOKEN=") {
                token = t.split_whitespace().next().unwrap_or_default().to_string();
            }
            if job.is_empty() && line.trim_start().starts_with("jobs/") {
                job = line.split_whitespace().next().unwrap_or_default().to_string();
            }
            if line.starts_with("demo ready") {
                break;
            }
        }
        (token, job, compliance)
    })
    .await
    .expect("join");
    assert!(!token.is_empty() && job.starts_with("jobs/"), "demo printed a token and a job");

    let mut client = CalibrationServiceClient::connect(format!("http://127.0.0.1:{port}")).await.expect("connect");
    let ranking = client
        .get_ranking(req(&token, proto::GetRankingRequest { job, ..Default::default() }))
        .await
        .expect("ranking")
        .into_inner();
    assert_eq!(ranking.entries.len(), 20);
    assert!(
        ranking.entries.iter().all(|e| e.scorecard_count == 4 && e.score_lower <= e.score && e.score <= e.score_upper)
    );
    let flagged = client
        .list_rater_reports(req(&token, proto::ListRaterReportsRequest { flagged_only: true, ..Default::default() }))
        .await
        .expect("reports")
        .into_inner();
    let raters: Vec<_> = flagged.reports.iter().map(|r| r.rater.as_str()).collect();
    for planted in ["dagny", "lena", "nadia"] {
        assert!(raters.contains(&planted), "{planted} is flagged: {raters:?}");
    }

    // Each flagged rater was announced once as a `rater.flagged` event.
    let mut events =
        scorecard::proto::event_service_client::EventServiceClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .expect("connect");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let announced = loop {
        let listed = events
            .list_events(req(
                &token,
                proto::ListEventsRequest {
                    event_types: vec!["rater.flagged".into()],
                    page_size: 100,
                    ..Default::default()
                },
            ))
            .await
            .expect("events")
            .into_inner()
            .events;
        if listed.len() >= raters.len() || std::time::Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let mut announced: Vec<String> =
        announced.iter().map(|e| e.resource.trim_start_matches("raters/").to_string()).collect();
    announced.sort();
    let mut expected: Vec<String> = raters.iter().map(|r| r.to_string()).collect();
    expected.sort();
    assert_eq!(announced, expected, "one rater.flagged per flagged rater");

    // The compliance role's report covers every candidate, with the declined
    // ones counted as unknown.
    assert!(!compliance.is_empty(), "demo printed a compliance token");
    let mut reports = scorecard::proto::compliance_service_client::ComplianceServiceClient::connect(format!(
        "http://127.0.0.1:{port}"
    ))
    .await
    .expect("connect");
    let report = reports
        .get_adverse_impact_report(req(&compliance, proto::GetAdverseImpactReportRequest::default()))
        .await
        .expect("report")
        .into_inner();
    assert_eq!(report.subject_count, 60);
    assert!(report.unknown_sex_count > 0 && report.unknown_sex_count < 20, "{}", report.unknown_sex_count);
    let sex = report
        .tables
        .iter()
        .find(|t| t.measure == proto::Measure::CalibratedScore as i32 && t.grouping == proto::Grouping::Sex as i32)
        .expect("calibrated score by sex");
    assert!(sex.rows.iter().any(|r| r.category == "female") && sex.rows.iter().any(|r| r.category == "male"));
    let _ = child.kill();
    let _ = child.wait();
}

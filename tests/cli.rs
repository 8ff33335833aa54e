//! The recruiter CLI against a real server: the same numbers as the API.

mod common;

use common::{Db, Org, TestApp, req, token};
use scorecard::proto;

async fn run(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scorecard")).args(&args).output().expect("run cli");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_prints_the_numbers_the_api_serves() {
    let app = TestApp::start(Db::Sqlite).await;
    let org = Org::new(&app, "acme").await;
    for n in 0..3 {
        let c = org.candidate(&app, &format!("c{n}")).await;
        for rater in ["ana", "ben"] {
            let i = org.interview(&app, &c, rater).await;
            org.submit(&app, &i).await;
        }
    }
    let rita = token("rita", "acme", &["recruiter"]);
    app.hiring()
        .update_job(req(
            &org.admin,
            proto::UpdateJobRequest {
                job: Some(proto::Job { name: org.job.name.clone(), hiring_bar: Some(3.3), ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["hiring_bar".into()] }),
            },
        ))
        .await
        .expect("set the bar");
    let api = app
        .calibration()
        .get_ranking(req(&rita, proto::GetRankingRequest { job: org.job.name.clone(), ..Default::default() }))
        .await
        .expect("ranking")
        .into_inner();
    // A bare host:port, as grpcurl takes it (the compliance calls below use http://).
    let base = |cmd: &str| vec![cmd.to_string(), "--addr".into(), app.addr.to_string(), "--token".into(), rita.clone()];

    let mut args = base("ranking");
    args.extend(["--job".into(), org.job.name.clone(), "--json".into()]);
    let (ok, out, err) = run(args).await;
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    let entries = json["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), api.entries.len());
    for (cli, api) in entries.iter().zip(&api.entries) {
        assert_eq!(cli["candidate"], api.candidate.as_str());
        assert_eq!(cli["score"].as_f64(), Some(api.score));
        assert_eq!(cli["score_lower"].as_f64(), Some(api.score_lower));
        assert_eq!(cli["raw_mean"].as_f64(), Some(api.raw_mean));
        assert_eq!(cli["p_above_bar"].as_f64(), api.p_above_bar);
        assert_eq!(cli["tier"].as_i64(), Some(i64::from(api.tier)));
    }
    assert_eq!(json["hiring_bar"].as_f64(), Some(3.3));

    let mut args = base("ranking");
    args.extend(["--job".into(), org.job.name.clone()]);
    let (ok, table, err) = run(args).await;
    assert!(ok, "{err}");
    assert!(table.starts_with("rank  tier  candidate"), "{table}");
    assert!(table.contains("P(≥ 3.3)") && table.contains("hiring bar 3.3"), "{table}");
    assert!(table.contains("technical") && table.contains("communication"));
    for e in &api.entries {
        assert!(table.contains(&e.candidate) && table.contains(&format!("{:.2}", e.score)), "{table}");
    }

    // The plan: every candidate has met ana and ben, so cara (new) is the one to send.
    let mut args = base("plan");
    args.extend(["--job".into(), org.job.name.clone(), "--slots".into(), "2".into(), "--interviewers".into()]);
    args.push("ana,cara".into());
    let mut as_json = args.clone();
    as_json.push("--json".into());
    let (ok, out, err) = run(as_json).await;
    assert!(ok, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(plan["decision_line"].as_f64(), Some(3.3));
    let suggestions = plan["suggestions"].as_array().expect("suggestions");
    assert!(!suggestions.is_empty() && suggestions.iter().all(|s| s["interviewer"] == "cara"), "{plan}");
    let (ok, table, err) = run(args).await;
    assert!(ok, "{err}");
    assert!(table.contains("against the hiring bar 3.3"), "{table}");
    assert!(table.contains("cara") && table.contains("interviewer"), "{table}");

    let (ok, raters, err) = run(base("raters")).await;
    assert!(ok, "{err}");
    assert!(raters.contains("ana") && raters.contains("INSUFFICIENT_DATA"), "{raters}");
    let mut args = base("reliability");
    args.extend(["--job".into(), org.job.name.clone(), "--json".into()]);
    let (ok, out, err) = run(args).await;
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(json["figures"].as_array().is_some_and(|f| f.iter().any(|x| x["competency"] == "(overall)")));

    // The compliance role's impact report: the API's numbers, as JSON and as a table.
    let ats = token("ats", "acme", &["integration"]);
    let first = &api.entries[0].candidate;
    app.compliance()
        .set_self_identification(req(
            &ats,
            proto::SetSelfIdentificationRequest {
                candidate: first.clone(),
                sex: proto::Sex::Female as i32,
                race_ethnicity: proto::RaceEthnicity::Asian as i32,
            },
        ))
        .await
        .expect("self-identification");
    let cora = token("cora", "acme", &["compliance"]);
    let compliance = |json: bool| {
        let mut args = vec![
            "compliance".to_string(),
            "impact".into(),
            "--job".into(),
            org.job.name.clone(),
            "--addr".into(),
            format!("http://{}", app.addr),
            "--token".into(),
            cora.clone(),
        ];
        if json {
            args.push("--json".into());
        }
        args
    };
    let (ok, out, err) = run(compliance(true)).await;
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!((json["subject_count"].as_i64(), json["unknown_sex_count"].as_i64()), (Some(3), Some(2)));
    let rows = json["rows"].as_array().expect("rows");
    assert!(
        rows.iter().any(|r| r["measure"] == "calibrated_score" && r["grouping"] == "sex" && r["category"] == "female")
    );
    let (ok, table, err) = run(compliance(false)).await;
    assert!(ok, "{err}");
    assert!(table.starts_with("3 subjects; sex unknown for 2"), "{table}");
    assert!(table.contains("female/asian"), "{table}");

    // Errors are explained, with a failing exit status.
    let mut args = base("ranking");
    args.extend(["--job".into(), "jobs/nope".into()]);
    let (ok, _, err) = run(args).await;
    assert!(!ok);
    assert!(err.contains("NotFound"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_prints_shell_completions() {
    let (ok, bash, err) = run(vec!["completions".into(), "bash".into()]).await;
    assert!(ok, "{err}");
    assert!(bash.contains("_scorecard()"), "a bash completion function");
    for command in ["ranking", "plan", "raters", "compliance", "token"] {
        assert!(bash.contains(command), "completes `{command}`");
    }
    let (ok, zsh, err) = run(vec!["completions".into(), "zsh".into()]).await;
    assert!(ok, "{err}");
    assert!(zsh.starts_with("#compdef scorecard"), "{}", &zsh[..zsh.len().min(80)]);
    let (ok, _, err) = run(vec!["completions".into(), "tcsh".into()]).await;
    assert!(!ok && err.contains("tcsh"), "an unknown shell is named in the error: {err}");
}

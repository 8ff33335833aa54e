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
        assert!(cli["candidate_name"].as_str().is_some_and(|n| n.starts_with("Candidate c")), "{cli}");
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
    // People by name in the table; their ids are in JSON and CSV.
    for e in &api.entries {
        assert!(!table.contains(&e.candidate) && table.contains(&format!("{:.2}", e.score)), "{table}");
    }
    for n in 0..3 {
        assert!(table.contains(&format!("Candidate c{n}")), "{table}");
    }

    let mut args = base("ranking");
    args.extend(["--job".into(), org.job.name.clone(), "--output".into(), "csv".into()]);
    let (ok, csv, err) = run(args).await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    for column in ["rank", "candidate", "candidate_name", "score", "score_lower", "p_above_bar", "technical score"] {
        assert!(header.contains(&column), "{column} missing from {header:?}");
    }
    assert_eq!(lines.len(), 1 + api.entries.len(), "{csv}");
    let at = |name: &str| header.iter().position(|h| *h == name).expect("column");
    for (line, e) in lines[1..].iter().zip(&api.entries) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[at("candidate")], e.candidate);
        assert!(cells[at("candidate_name")].starts_with("Candidate c"), "{line}");
        assert_eq!(cells[at("score")].parse::<f64>().ok(), Some(e.score));
    }

    // https:// speaks TLS: against this plain-text server it fails, and says why.
    let mut args = base("ranking");
    args[2] = format!("https://{}", app.addr);
    args.extend(["--job".into(), org.job.name.clone()]);
    let (ok, _, err) = run(args).await;
    assert!(!ok && err.contains("cannot reach https://"), "{err}");

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

/// `scorecard doctor` with the flags `serve` takes: a healthy configuration
/// passes; a broken one fails, naming each problem with its fix.
async fn doctor_says_what_is_wrong_and_how_to_fix_it(db: Db) {
    let app = TestApp::start(db).await;
    let free = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").to_string();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).expect("migrations").count();
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, base64
    let healthy = vec![
        "doctor".to_string(),
        "--database-url".into(),
        app.database_url.clone(),
        "--jwt-secret".into(),
        "a-shared-secret-of-at-least-32-bytes!!".into(),
        "--jwt-audience".into(),
        "scorecard".into(),
        "--self-id-key".into(),
        key.into(),
        "--listen".into(),
        free(),
        "--http-listen".into(),
        free(),
    ];
    let (ok, out, err) = run(healthy.clone()).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("all {migrations} migrations applied")), "{out}");
    assert!(out.contains("0 problems, 0 warnings: `scorecard serve` would start"), "{out}");
    assert!(!out.contains("a-shared-secret"), "the secret is never printed: {out}");

    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = held.local_addr().expect("addr").to_string();
    let broken = vec![
        "doctor".to_string(),
        "--database-url".into(),
        app.database_url.clone(),
        "--jwt-public-keys".into(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/rsa_public.pem").into(),
        "--self-id-key".into(),
        "dG9vIHNob3J0".into(),
        "--listen".into(),
        busy.clone(),
        "--http-listen".into(),
        "off".into(),
    ];
    let (ok, out, _) = run(broken).await;
    assert!(!ok, "{out}");
    for line in [
        "ok    tokens       loaded 1 public key(s)".to_string(),
        "FAIL  audience".into(),
        "FAIL  self-id".into(),
        format!("FAIL  listen       {busy} is in use"),
        "3 problems".into(),
    ] {
        assert!(out.contains(&line), "{line:?} missing from\n{out}");
    }
    assert_eq!(out.matches("fix: ").count(), 4, "each problem and the warning say how to fix it:\n{out}");
    drop(held);

    if db == Db::Sqlite {
        // A database file nothing has migrated yet: serve would migrate it.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.db");
        std::fs::File::create(&path).expect("create");
        let mut args = healthy;
        args[2] = format!("sqlite://{}", path.display());
        let (ok, out, err) = run(args).await;
        assert!(ok, "{out}{err}");
        assert!(out.contains(&format!("0 of {migrations} migrations applied, pending: 20261122000001 init")), "{out}");
        assert!(out.contains("run `scorecard migrate`"), "{out}");
        assert_eq!(std::fs::metadata(&path).expect("file").len(), 0, "doctor changes nothing");
    }
}

on_both_databases!(db: doctor_says_what_is_wrong_and_how_to_fix_it);

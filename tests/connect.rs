//! The Connect protocol on the gRPC port, against a real server on both
//! databases: plain `curl --http1.1` with JSON, binary bodies, Connect errors
//! with their HTTP statuses and details, and `buf curl --protocol connect`
//! over HTTP/2. The same checks as gRPC apply (tokens, roles, the audit log).

mod common;

use common::{Org, TestApp, req, token};
use prost::Message;
use scorecard::proto;
use serde_json::Value;

/// `curl --http1.1` POSTing `body` with `content_type`; the HTTP status, the
/// response's content type and its body.
async fn curl(
    url: String,
    content_type: &str,
    token: Option<&str>,
    extra: &[&str],
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("body");
    std::fs::write(&input, body).expect("body");
    let mut args: Vec<String> = vec![
        "--http1.1".into(),
        "-sS".into(),
        "-X".into(),
        "POST".into(),
        "-H".into(),
        format!("content-type: {content_type}"),
        "--data-binary".into(),
        format!("@{}", input.display()),
        "-o".into(),
        dir.path().join("out").display().to_string(),
        "-w".into(),
        "%{http_code} %{content_type}".into(),
    ];
    if let Some(token) = token {
        args.extend(["-H".into(), format!("authorization: Bearer {token}")]);
    }
    for e in extra {
        args.extend(["-H".into(), e.to_string()]);
    }
    args.push(url);
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("curl").args(&args).output())
        .await
        .expect("join")
        .expect("curl is installed");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let written = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, content_type) = written.split_once(' ').unwrap_or((&written, ""));
    let body = std::fs::read(dir.path().join("out")).unwrap_or_default();
    (status.parse().expect("status"), content_type.to_string(), body)
}

async fn json_call(app: &TestApp, method: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let url = format!("http://{}/scorecard.v1.{method}", app.addr);
    let (status, content_type, body) = curl(url, "application/json", token, &[], body.as_bytes().to_vec()).await;
    assert!(content_type.starts_with("application/json"), "{method}: {content_type}");
    (status, serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{method}: not JSON ({e}): {body:?}")))
}

/// The proto3 JSON of a message, by the descriptors the server compiles in.
fn to_json<M: Message>(message: &M, full_name: &str) -> String {
    let pool = prost_reflect::DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let descriptor = pool.get_message_by_name(full_name).expect("message");
    let dynamic =
        prost_reflect::DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice()).expect("decode");
    serde_json::to_string(&dynamic).expect("json")
}

async fn connect_speaks_json_and_binary_over_http1(app: TestApp) {
    // Its own organisation per database: the pause point below is armed by
    // organisation, and both databases' runs share this process.
    let tenant = if app.database_url.starts_with("postgres") { "acme-pg" } else { "acme-sqlite" };
    let org = Org::new(&app, tenant).await;
    let admin = org.admin.as_str();

    // JSON in, canonical JSON out (lowerCamelCase names), the same resource gRPC sees.
    let (status, created) = json_call(
        &app,
        "HiringService/CreateCandidate",
        Some(admin),
        r#"{"candidate":{"externalId":"gh-42","displayName":"Ada Lovelace","email":"ada@example.com"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let name = created["name"].as_str().expect("name").to_string();
    assert_eq!(created["displayName"], "Ada Lovelace");
    assert!(created["createTime"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339 timestamps: {created}");
    let via_grpc = app
        .hiring()
        .get_candidate(req(admin, proto::GetCandidateRequest { name: name.clone() }))
        .await
        .expect("gRPC sees it")
        .into_inner();
    assert_eq!(via_grpc.display_name, "Ada Lovelace");

    // A scorecard submitted over Connect counts like one submitted over gRPC.
    let interview = org.interview(&app, &via_grpc, "ivan").await;
    let ivan = token("ivan", tenant, &["interviewer"]);
    let submission = to_json(&Org::submission(&interview, "connect-1"), "scorecard.v1.SubmitScorecardRequest");
    let (status, scorecard) = json_call(&app, "ScorecardService/SubmitScorecard", Some(&ivan), &submission).await;
    assert_eq!(status, 200, "{scorecard}");
    assert_eq!(scorecard["revision"], 1);
    let ranking = common::full_ranking(&app, &org).await;
    assert!(ranking.entries.iter().any(|e| e.candidate == name), "the Connect submission is ranked");

    // Binary bodies: application/proto both ways.
    let url = format!("http://{}/scorecard.v1.HiringService/GetCandidate", app.addr);
    let body = proto::GetCandidateRequest { name: name.clone() }.encode_to_vec();
    let (status, content_type, answer) = curl(url, "application/proto", Some(admin), &[], body).await;
    assert_eq!((status, content_type.as_str()), (200, "application/proto"));
    assert_eq!(proto::Candidate::decode(answer.as_slice()).expect("a Candidate"), via_grpc);

    // An empty JSON body is the empty message; defaults are left out.
    let (status, list) = json_call(&app, "HiringService/ListCandidates", Some(admin), "").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["candidates"].as_array().map(Vec::len), Some(1));

    // Errors: the Connect error JSON, the HTTP status the spec gives the code,
    // the details (bytes and JSON) that gRPC carries, and nothing written.
    let (status, error) =
        json_call(&app, "HiringService/CreateCandidate", Some(admin), r#"{"candidate":{"externalId":""}}"#).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("invalid_argument")), "{error}");
    let detail = &error["details"][0];
    assert_eq!(detail["type"], "google.rpc.BadRequest", "{error}");
    assert!(detail["value"].as_str().is_some_and(|v| !v.is_empty() && !v.ends_with('=')), "{error}");
    let violations = detail["debug"]["fieldViolations"].as_array().expect("field violations");
    assert!(violations.iter().any(|v| v["field"].as_str().is_some_and(|f| f.contains("external_id"))), "{error}");
    let (_, list) = json_call(&app, "HiringService/ListCandidates", Some(admin), "{}").await;
    assert_eq!(list["candidates"].as_array().map(Vec::len), Some(1), "a failed request writes nothing");

    let (status, error) = json_call(&app, "HiringService/ListCandidates", None, "{}").await;
    assert_eq!((status, error["code"].as_str()), (401, Some("unauthenticated")), "{error}");
    let (status, error) = json_call(&app, "RubricService/CreateRubric", Some(&ivan), r#"{"rubric":{}}"#).await;
    assert_eq!((status, error["code"].as_str()), (403, Some("permission_denied")), "{error}");
    let (status, error) =
        json_call(&app, "HiringService/GetCandidate", Some(admin), r#"{"name":"candidates/0000000000000000"}"#).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")), "{error}");
    let (status, error) = json_call(&app, "HiringService/ListCandidates", Some(admin), r#"{"pageSize":"x"}"#).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("invalid_argument")), "{error}");
    let (status, error) = json_call(&app, "HiringService/ListCandidates", Some(admin), r#"{"color":"blue"}"#).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("invalid_argument")), "unknown fields: {error}");
    let (status, error) = json_call(&app, "EventService/WatchEvents", Some(admin), "{}").await;
    assert_eq!((status, error["code"].as_str()), (501, Some("unimplemented")), "streams: {error}");
    let (status, error) = json_call(&app, "HiringService/Nope", Some(admin), "{}").await;
    assert_eq!((status, error["code"].as_str()), (501, Some("unimplemented")), "{error}");

    // connect-timeout-ms: nonsense is refused; a generous one is honoured.
    let url = format!("http://{}/scorecard.v1.HiringService/ListCandidates", app.addr);
    let (status, _, body) =
        curl(url.clone(), "application/json", Some(admin), &["connect-timeout-ms: soon"], b"{}".to_vec()).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = curl(
        url,
        "application/json",
        Some(admin),
        &["connect-timeout-ms: 5000", "connect-protocol-version: 1"],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // ... and it is the call's deadline: a submission held in the group
    // commit past it is answered deadline_exceeded, HTTP 504.
    let second = org.interview(&app, &via_grpc, "ivana").await;
    let ivana = token("ivana", tenant, &["interviewer"]);
    let held = scorecard::pauses::arm("store.group_commit.batch", tenant);
    let url = format!("http://{}/scorecard.v1.ScorecardService/SubmitScorecard", app.addr);
    let body = to_json(&Org::submission(&second, "connect-2"), "scorecard.v1.SubmitScorecardRequest");
    let (status, _, answer) =
        curl(url, "application/json", Some(&ivana), &["connect-timeout-ms: 300"], body.into_bytes()).await;
    let answer: Value = serde_json::from_slice(&answer).expect("a Connect error");
    assert_eq!((status, answer["code"].as_str()), (504, Some("deadline_exceeded")), "{answer}");
    held.release();

    // The audit log records the Connect calls as the gRPC calls they are
    // (written behind the answer: wait for it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let audit = app
            .audit()
            .list_audit_events(req(admin, proto::ListAuditEventsRequest { page_size: 1000, ..Default::default() }))
            .await
            .expect("audit")
            .into_inner();
        let methods: Vec<&str> = audit.audit_events.iter().map(|e| e.method.as_str()).collect();
        let recorded = |m: &str| methods.iter().any(|x| x.ends_with(m));
        if recorded("HiringService/CreateCandidate") && recorded("ScorecardService/SubmitScorecard") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Connect calls missing from the audit log: {methods:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `buf curl --protocol connect` over HTTP/2 (prior knowledge), with the
/// server's own descriptors as the schema: buf if installed, else from npm as
/// `.ci/run` takes it.
async fn buf_curl_calls_over_connect(app: TestApp) {
    let org = Org::new(&app, "acme").await;
    let candidate = org.candidate(&app, "c1").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = dir.path().join("scorecard.binpb");
    std::fs::write(&schema, proto::FILE_DESCRIPTOR_SET).expect("schema");
    let buf = |body: String, method: &str| {
        let mut command = if std::process::Command::new("buf").arg("--version").output().is_ok() {
            std::process::Command::new("buf")
        } else {
            let mut npx = std::process::Command::new("npx");
            npx.args(["--yes", "@bufbuild/buf@1.75.0"]);
            npx
        };
        command.args([
            "curl",
            "--protocol",
            "connect",
            "--http2-prior-knowledge",
            "--schema",
            &schema.display().to_string(),
            "-H",
            &format!("authorization: Bearer {}", org.admin),
            "-d",
            &body,
            &format!("http://{}/scorecard.v1.{method}", app.addr),
        ]);
        command
    };
    let mut ok = buf(format!(r#"{{"name":"{}"}}"#, candidate.name), "HiringService/GetCandidate");
    let out = tokio::task::spawn_blocking(move || ok.output()).await.expect("join").expect("buf or npx is installed");
    assert!(out.status.success(), "buf curl: {}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["displayName"], "Candidate c1", "{answer}");

    let mut missing = buf(r#"{"name":"candidates/0000000000000000"}"#.into(), "HiringService/GetCandidate");
    let out = tokio::task::spawn_blocking(move || missing.output()).await.expect("join").expect("buf");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not_found"), "{stderr}");
}

on_both_databases!(connect_speaks_json_and_binary_over_http1, buf_curl_calls_over_connect);

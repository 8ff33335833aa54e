//! OpenTelemetry traces from the real binary to an OTLP/HTTP receiver the
//! test starts: configured by the standard OTEL_* variables, one server span
//! per RPC with the RPC semantic conventions, the caller's `traceparent`
//! continued, database and calibration work as child spans; on both databases.

mod common;

use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Db, req, token};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use scorecard::proto;

/// Every OTLP export the receiver was sent.
type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

async fn receiver() -> (Received, String) {
    let received: Received = Default::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let export = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                store.lock().unwrap().push(export);
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
    (received, endpoint)
}

fn serve(database_url: &str, addr: &str, endpoint: &str) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scorecard"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SCORECARD_") || key.starts_with("OTEL_") {
            command.env_remove(key);
        }
    }
    common::spawn_until_serving(
        command
            .args(["serve", "--listen", addr, "--http-listen", "off", "--database-url", database_url])
            .env("SCORECARD_JWT_SECRET", common::SECRET)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_SERVICE_NAME", "scorecard-under-test")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("RUST_LOG", "info"),
    )
}

fn spans(received: &Received) -> Vec<(Span, Option<String>)> {
    let mut out = Vec::new();
    for export in received.lock().unwrap().iter() {
        for resource in &export.resource_spans {
            let service = resource.resource.as_ref().and_then(|r| {
                r.attributes.iter().find(|a| a.key == "service.name").and_then(|a| match &a.value {
                    Some(v) => match &v.value {
                        Some(AnyValue::StringValue(s)) => Some(s.clone()),
                        _ => None,
                    },
                    None => None,
                })
            });
            for scope in &resource.scope_spans {
                for span in &scope.spans {
                    out.push((span.clone(), service.clone()));
                }
            }
        }
    }
    out
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.clone()).and_then(|v| v.value)
}

async fn rpcs_are_traced_over_otlp(db: Db) {
    // A database the test owns (a fresh PostgreSQL schema, or an SQLite file).
    // (Its own server stays up beside the one under test, as a replica would.)
    let app = common::TestApp::start(db).await;
    let database_url = app.database_url.clone();
    let (received, endpoint) = receiver().await;
    let addr =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let mut server = serve(&database_url, &addr, &endpoint);

    let channel =
        tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.expect("connect");
    let admin = token("root", "acme", &["admin"]);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = req(&admin, proto::CreateRubricRequest { rubric: Some(common::sample_rubric("Backend")) });
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-{caller_span}-01").parse().unwrap());
    let rubric = proto::rubric_service_client::RubricServiceClient::new(channel.clone())
        .create_rubric(request)
        .await
        .expect("create rubric")
        .into_inner();
    let mut hiring = proto::hiring_service_client::HiringServiceClient::new(channel.clone());
    let job = hiring
        .create_job(req(
            &admin,
            proto::CreateJobRequest {
                job: Some(proto::Job {
                    title: "Backend Engineer".into(),
                    external_id: "gh-job-1".into(),
                    rubric: rubric.name,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("create job")
        .into_inner();
    let missing = hiring.get_job(req(&admin, proto::GetJobRequest { name: "jobs/0000000000000000".into() })).await;
    assert_eq!(missing.expect_err("no such job").code(), tonic::Code::NotFound);
    proto::calibration_service_client::CalibrationServiceClient::new(channel)
        .get_ranking(req(&admin, proto::GetRankingRequest { job: job.name, ..Default::default() }))
        .await
        .expect("an empty ranking");

    let deadline = Instant::now() + Duration::from_secs(15);
    let create = loop {
        let all = spans(&received);
        if let Some(found) = all.iter().find(|(s, _)| s.name == "scorecard.v1.RubricService/CreateRubric")
            && all.iter().any(|(s, _)| s.name == "scorecard.v1.HiringService/GetJob")
        {
            break found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no RPC span exported: {:?}",
            all.iter().map(|(s, _)| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (span, service) = create;
    assert_eq!(service.as_deref(), Some("scorecard-under-test"), "OTEL_SERVICE_NAME names the service");
    assert_eq!(hex(&span.trace_id), trace_id, "the caller's trace continues");
    assert_eq!(hex(&span.parent_span_id), caller_span, "the caller's span is the parent");
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(attribute(&span, "rpc.system"), Some(AnyValue::StringValue("grpc".into())));
    assert_eq!(attribute(&span, "rpc.service"), Some(AnyValue::StringValue("scorecard.v1.RubricService".into())));
    assert_eq!(attribute(&span, "rpc.method"), Some(AnyValue::StringValue("CreateRubric".into())));
    assert_eq!(attribute(&span, "rpc.grpc.status_code"), Some(AnyValue::IntValue(0)));

    // Its database work are children in the same trace.
    let all = spans(&received);
    let children: Vec<&Span> = all.iter().map(|(s, _)| s).filter(|s| s.parent_span_id == span.span_id).collect();
    let db = children.iter().find(|s| s.name == "db").expect("a database span under the RPC");
    assert_eq!(db.trace_id, span.trace_id);
    let system = if db_is_postgres(&database_url) { "postgres" } else { "sqlite" };
    assert_eq!(attribute(db, "db.system"), Some(AnyValue::StringValue(system.into())));
    assert_eq!(attribute(db, "db.operation"), Some(AnyValue::StringValue("create_rubric".into())));

    // Without a traceparent an RPC starts its own trace; a caller's error is not the server's.
    let get = all.iter().map(|(s, _)| s).find(|s| s.name == "scorecard.v1.HiringService/GetJob").expect("GetJob");
    assert_ne!(hex(&get.trace_id), trace_id);
    assert!(get.parent_span_id.is_empty(), "a root span");
    assert_eq!(attribute(get, "rpc.grpc.status_code"), Some(AnyValue::IntValue(5)));
    assert_ne!(get.status.as_ref().map(|s| s.code), Some(2), "NOT_FOUND is not a server error");

    // Calibration work is traced too (the ranking's load of the organisation).
    let deadline = Instant::now() + Duration::from_secs(15);
    while !spans(&received).iter().any(|(s, _)| s.name == "calibration") {
        assert!(Instant::now() < deadline, "no calibration span exported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || server.wait()).await.expect("join").expect("wait");
    assert!(exited.success(), "a clean exit with the exporter flushed");
    // Last: dropping a PostgreSQL schema waits for the other server's connections.
    drop(app);
}

fn db_is_postgres(url: &str) -> bool {
    url.starts_with("postgres")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

on_both_databases!(db: rpcs_are_traced_over_otlp);

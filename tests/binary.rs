//! The `scorecard` binary as a newcomer runs it: no configuration at all (a
//! generated development secret, an SQLite file in the working directory),
//! tokens from `scorecard token`, and a clean exit on SIGTERM with data kept.

mod common;

use std::process::{Child, Command};

use common::req;
use scorecard::proto::{self, rubric_service_client::RubricServiceClient};

fn scorecard(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scorecard"));
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("SCORECARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

/// Starts `scorecard serve` (gRPC on `addr`, HTTP on `http`) and returns once
/// it logs that it is serving.
fn serve(dir: &std::path::Path, addr: &str, http: &str) -> Child {
    common::spawn_until_serving(scorecard(dir).args(["serve", "--dev", "--listen", addr, "--http-listen", http]))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    child.wait().expect("wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_with_no_setup_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let mut server = serve(dir.path(), &addr, &http);

    // The HTTP listener answers probes and scrapes beside gRPC.
    let healthz = reqwest::get(format!("http://{http}/healthz")).await.expect("healthz");
    assert_eq!(healthz.status(), 200);
    let metrics = reqwest::get(format!("http://{http}/metrics")).await.expect("metrics");
    assert!(metrics.text().await.expect("body").contains("scorecard_db_pool_max_connections{pool=\"sqlite_write\"} 1"));

    let out = scorecard(dir.path())
        .args(["token", "--sub", "ana", "--org", "acme", "--role", "admin"])
        .output()
        .expect("scorecard token");
    assert!(out.status.success(), "token: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("utf8").trim().to_string();
    let secret = std::fs::metadata(dir.path().join("scorecard-dev.secret")).expect("dev secret written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(secret.permissions().mode() & 0o777, 0o600, "the dev secret is private");
    }

    let mut rubrics = RubricServiceClient::connect(format!("http://{addr}")).await.expect("connect");
    rubrics
        .create_rubric(req(&token, proto::CreateRubricRequest { rubric: Some(common::sample_rubric("Backend")) }))
        .await
        .expect("create with a minted token");
    drop(rubrics);
    // Wait off the runtime, so the client's connection can answer the server's GOAWAY.
    let (server, status) = tokio::task::spawn_blocking(move || {
        let status = terminate(&mut server);
        (server, status)
    })
    .await
    .expect("join");
    drop(server);
    assert!(status.success(), "SIGTERM shuts down cleanly");

    // Restarted on the same file, the rubric is still there.
    let mut server = serve(dir.path(), &addr, "off");
    let mut rubrics = RubricServiceClient::connect(format!("http://{addr}")).await.expect("reconnect");
    let listed = rubrics.list_rubrics(req(&token, proto::ListRubricsRequest::default())).await.expect("list");
    assert_eq!(listed.into_inner().rubrics.len(), 1);
    drop(rubrics);
    let status = tokio::task::spawn_blocking(move || terminate(&mut server)).await.expect("join");
    assert!(status.success());

    let migrate = scorecard(dir.path()).arg("migrate").output().expect("migrate");
    assert!(migrate.status.success(), "migrate: {}", String::from_utf8_lossy(&migrate.stderr));
    let bad_role =
        scorecard(dir.path()).args(["token", "--sub", "a", "--org", "o", "--role", "root"]).output().expect("token");
    assert!(!bad_role.status.success(), "unknown roles are refused when minting");
}

/// `serve` refuses to start, and says why, without keys (unless `--dev`) and
/// with public keys but no audience.
#[test]
fn refuses_to_start_without_keys_or_without_an_audience_for_public_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = format!("127.0.0.1:{}", free_port());
    let no_keys =
        scorecard(dir.path()).args(["serve", "--listen", &addr, "--http-listen", "off"]).output().expect("run serve");
    assert!(!no_keys.status.success(), "serve without keys must not start");
    let why = String::from_utf8_lossy(&no_keys.stderr);
    assert!(why.contains("no token keys configured") && why.contains("--dev"), "{why}");
    assert!(!dir.path().join("scorecard-dev.secret").exists(), "no development secret is written without --dev");

    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/jwks.json");
    let no_audience = scorecard(dir.path())
        .args(["serve", "--listen", &addr, "--http-listen", "off", "--jwt-public-keys"])
        .arg(&keys)
        .output()
        .expect("run serve");
    assert!(!no_audience.status.success(), "public keys without an audience must not start");
    let why = String::from_utf8_lossy(&no_audience.stderr);
    assert!(why.contains("SCORECARD_JWT_AUDIENCE"), "{why}");
}

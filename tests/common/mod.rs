//! The end-to-end test harness: a real scorecard server on a random port over a
//! fresh database (a temporary SQLite file, or a fresh PostgreSQL schema), and
//! tonic clients to call it.
//!
//! PostgreSQL comes from `SCORECARD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). A PostgreSQL test fails — never
//! skips — when that server cannot be reached.

#![allow(dead_code)]

use std::sync::Arc;

use scorecard::auth::{Claims, Verifier, mint_token};
use scorecard::proto::calibration_service_client::CalibrationServiceClient;
use scorecard::proto::event_service_client::EventServiceClient;
use scorecard::proto::hiring_service_client::HiringServiceClient;
use scorecard::proto::rubric_service_client::RubricServiceClient;
use scorecard::proto::scorecard_service_client::ScorecardServiceClient;
use scorecard::proto::webhook_service_client::WebhookServiceClient;
use scorecard::proto::{self, Recommendation};
use scorecard::server::Settings;
use scorecard::store::Store;
use sqlx::Connection;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub const SECRET: &str = "end-to-end-test-secret-0123456789abcdef";
/// The self-identification sealing key of test servers (32 bytes, base64).
pub const SELF_ID_KEY: &str = "c2NvcmVjYXJkLXRlc3Qtc2VsZi1pZC1rZXktMzJieXQ=";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Where a test's database lives, and how to remove it afterwards.
enum Database {
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        schema: String,
    },
    /// Handed on to a restarted app.
    Moved,
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    /// The HTTP listener (report pages, /metrics).
    pub http_addr: std::net::SocketAddr,
    pub channel: Channel,
    pub database_url: String,
    database: Database,
    settings: Settings,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// Server settings for tests: webhooks may go to loopback receivers and retry
/// within milliseconds; overdue interviews are found within a fraction of a second.
pub fn test_settings() -> Settings {
    Settings {
        webhooks: scorecard::webhooks::WebhookSettings {
            allow_private: true,
            retry_base: std::time::Duration::from_millis(50),
            retry_max: std::time::Duration::from_millis(400),
            retry_window: std::time::Duration::from_secs(60),
            timeout: std::time::Duration::from_secs(2),
            poll_interval: std::time::Duration::from_millis(100),
        },
        overdue_scan: std::time::Duration::from_millis(200),
        self_id_keys: Some(Arc::new(
            scorecard::auth::sealing::SealingKeys::new(SELF_ID_KEY, "").expect("the test self-identification key"),
        )),
        key_reload: std::time::Duration::from_millis(100),
        // Suites make many calls with one token in a burst.
        guard: scorecard::server::guard::GuardSettings {
            rate_per_second: 10_000.0,
            burst: 10_000.0,
            ..Default::default()
        },
        ..Settings::default()
    }
}

pub fn postgres_url() -> String {
    std::env::var("SCORECARD_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// Logs only when `TEST_LOG` is set.
fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = scorecard::telemetry::init(scorecard::telemetry::LogFormat::Pretty);
    }
}

pub fn verifier() -> Verifier {
    Verifier::new(Some(SECRET), None, None, None).expect("test verifier")
}

impl TestApp {
    pub async fn start(db: Db) -> TestApp {
        Self::start_with(db, verifier()).await
    }

    pub async fn start_with(db: Db, verifier: Verifier) -> TestApp {
        Self::start_configured(db, verifier, test_settings()).await
    }

    pub async fn start_configured(db: Db, verifier: Verifier, settings: Settings) -> TestApp {
        init_logs();
        let (database_url, database) = match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                (url, Database::Sqlite { _dir: dir })
            }
            Db::Postgres => {
                let admin_url = postgres_url();
                let schema = format!("t_{}", uuid_like());
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL tests need a server at {admin_url} (set SCORECARD_TEST_POSTGRES_URL; \
                         .ci/run starts one): {e}"
                    )
                });
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create schema {schema}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test schema");
                conn.close().await.ok();
                let sep = if admin_url.contains('?') { '&' } else { '?' };
                let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
                (url, Database::Postgres { admin_url, schema })
            }
        };
        Self::serve_on(database_url, database, verifier, settings).await
    }

    pub fn rubrics(&self) -> RubricServiceClient<Channel> {
        RubricServiceClient::new(self.channel.clone())
    }
    pub fn hiring(&self) -> HiringServiceClient<Channel> {
        HiringServiceClient::new(self.channel.clone())
    }
    pub fn scorecards(&self) -> ScorecardServiceClient<Channel> {
        ScorecardServiceClient::new(self.channel.clone())
    }
    pub fn calibration(&self) -> CalibrationServiceClient<Channel> {
        CalibrationServiceClient::new(self.channel.clone())
    }
    pub fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel.clone())
    }
    pub fn webhooks(&self) -> WebhookServiceClient<Channel> {
        WebhookServiceClient::new(self.channel.clone())
    }
    pub fn compliance(&self) -> scorecard::proto::compliance_service_client::ComplianceServiceClient<Channel> {
        scorecard::proto::compliance_service_client::ComplianceServiceClient::new(self.channel.clone())
    }
    pub fn audit(&self) -> scorecard::proto::audit_service_client::AuditServiceClient<Channel> {
        scorecard::proto::audit_service_client::AuditServiceClient::new(self.channel.clone())
    }

    /// A second server on the same database, as another replica behind a load
    /// balancer would be. The database stays owned by `self`.
    pub async fn replica(&self) -> TestApp {
        Self::serve_on(self.database_url.clone(), Database::Moved, verifier(), self.settings.clone()).await
    }

    /// Stops the server and starts a new one on the same database (a restart).
    pub async fn restart(self) -> TestApp {
        let settings = self.settings.clone();
        self.restart_with(settings).await
    }

    /// Stops this server (gracefully) and starts another on the same
    /// database with `settings`.
    pub async fn restart_with(mut self, settings: Settings) -> TestApp {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
        let database = std::mem::replace(&mut self.database, Database::Moved);
        let url = self.database_url.clone();
        let mut next = Self::serve_on(url, database, verifier(), settings).await;
        next.database_url = self.database_url.clone();
        next
    }

    async fn serve_on(database_url: String, database: Database, verifier: Verifier, settings: Settings) -> TestApp {
        let store = Store::connect(&database_url, 8).await.expect("connect test database");
        store.migrate().await.expect("migrate test database");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let http_addr = http.local_addr().expect("local http addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_settings = settings.clone();
        let server = tokio::spawn(async move {
            let settings = server_settings;
            scorecard::server::serve(listener, Some(http), store, Arc::new(verifier), settings, async {
                let _ = rx.await;
            })
            .await
            .expect("server failed");
        });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect to test server");
        TestApp { addr, http_addr, channel, database_url, database, settings, shutdown: Some(tx), server: Some(server) }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Database::Postgres { admin_url, schema } = &self.database {
            let (admin_url, schema) = (admin_url.clone(), schema.clone());
            // Drop runs outside any async context we may block: use a thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop schema if exists {schema} cascade")))
                            .execute(&mut conn)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

fn uuid_like() -> String {
    let bytes: [u8; 8] = rand_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    out
}

/// A token for `sub` in `org` with `roles`, valid for ten minutes.
pub fn token(sub: &str, org: &str, roles: &[&str]) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: sub.into(),
        org: org.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        exp: now + 600,
        nbf: None,
        iat: Some(now),
        iss: None,
        aud: None,
    };
    mint_token(SECRET, &claims).expect("mint")
}

/// A request carrying `token` as its bearer credential.
pub fn req<T>(token: &str, message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    r
}

/// The field names of a `BadRequest` detail in an error status.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Asserts `result` failed with `code`, returning the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(v) => panic!("expected {code:?}, got OK: {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "unexpected status: {s:?}");
            s
        }
    }
}

/// Asserts an `INVALID_ARGUMENT` naming exactly these fields (in any order).
#[track_caller]
pub fn expect_violations<T: std::fmt::Debug>(result: Result<T, Status>, fields: &[&str]) {
    let status = expect_code(result, Code::InvalidArgument);
    let mut got = violated_fields(&status);
    got.sort();
    let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "violations of {status:?}");
}

/// A two-dimension rubric on a 1..4 scale with four competencies.
pub fn sample_rubric(title: &str) -> proto::Rubric {
    let competency = |key: &str, dimension: &str| proto::Competency {
        key: key.into(),
        title: key.replace('_', " "),
        dimension_key: dimension.into(),
        weight: 1.0,
        description: format!("How the candidate handles {key}."),
        anchors: (1..=4)
            .map(|s| proto::Anchor {
                score: s,
                label: ["Weak", "Mixed", "Good", "Strong"][(s - 1) as usize].into(),
                description: format!("Observed behaviour at level {s}."),
            })
            .collect(),
    };
    proto::Rubric {
        title: title.into(),
        scale: Some(proto::Scale { min: 1, max: 4 }),
        dimensions: vec![
            proto::Dimension { key: "technical".into(), title: "Technical".into(), weight: 0.5 },
            proto::Dimension { key: "communication".into(), title: "Communication".into(), weight: 0.5 },
        ],
        competencies: vec![
            competency("api_design", "technical"),
            competency("debugging", "technical"),
            competency("explaining_tradeoffs", "communication"),
            competency("collaboration", "communication"),
        ],
        ..Default::default()
    }
}

pub fn rating(competency: &str, score: i32) -> proto::Rating {
    proto::Rating {
        competency: competency.into(),
        score,
        evidence: format!("On {competency}, the candidate walked through a concrete example and its trade-offs."),
    }
}

/// Builds a small organisation: a rubric, a job, and helpers for the rest.
pub struct Org {
    pub name: String,
    pub admin: String,
    pub rubric: proto::Rubric,
    pub job: proto::Job,
}

impl Org {
    pub async fn new(app: &TestApp, org: &str) -> Org {
        let admin = token("root", org, &["admin"]);
        let rubric = app
            .rubrics()
            .create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(sample_rubric("Backend")) }))
            .await
            .expect("create rubric")
            .into_inner();
        let job = app
            .hiring()
            .create_job(req(
                &admin,
                proto::CreateJobRequest {
                    job: Some(proto::Job {
                        title: "Backend Engineer".into(),
                        external_id: "gh-job-1".into(),
                        rubric: rubric.name.clone(),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .expect("create job")
            .into_inner();
        Org { name: org.into(), admin, rubric, job }
    }

    pub async fn candidate(&self, app: &TestApp, external_id: &str) -> proto::Candidate {
        app.hiring()
            .create_candidate(req(
                &self.admin,
                proto::CreateCandidateRequest {
                    candidate: Some(proto::Candidate {
                        external_id: external_id.into(),
                        display_name: format!("Candidate {external_id}"),
                        email: format!("{external_id}@example.com"),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .expect("create candidate")
            .into_inner()
    }

    /// An interview of `candidate` by `interviewer`, scheduled an hour ago,
    /// focusing on `api_design` and `collaboration`.
    pub async fn interview(&self, app: &TestApp, candidate: &proto::Candidate, interviewer: &str) -> proto::Interview {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        app.hiring()
            .create_interview(req(
                &self.admin,
                proto::CreateInterviewRequest {
                    interview: Some(proto::Interview {
                        job: self.job.name.clone(),
                        candidate: candidate.name.clone(),
                        interviewer: interviewer.into(),
                        focus_competencies: vec!["api_design".into(), "collaboration".into()],
                        scheduled_time: Some(prost_types::Timestamp { seconds: now as i64 - 3600, nanos: 0 }),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .expect("create interview")
            .into_inner()
    }

    /// A valid submission for `interview`.
    pub fn submission(interview: &proto::Interview, request_id: &str) -> proto::SubmitScorecardRequest {
        proto::SubmitScorecardRequest {
            interview: interview.name.clone(),
            ratings: vec![rating("api_design", 3), rating("collaboration", 4)],
            recommendation: Recommendation::Yes as i32,
            summary: "Solid design instincts; paired well.".into(),
            request_id: request_id.into(),
        }
    }

    /// Submits a valid scorecard for `interview` as its interviewer.
    pub async fn submit(&self, app: &TestApp, interview: &proto::Interview) -> proto::Scorecard {
        let me = token(&interview.interviewer, &self.name, &["interviewer"]);
        app.scorecards()
            .submit_scorecard(req(&me, Self::submission(interview, "")))
            .await
            .expect("submit scorecard")
            .into_inner()
    }
}

/// Submits, as `rater`, a scorecard giving `score` on both focus competencies.
pub async fn rate(app: &TestApp, org: &Org, candidate: &proto::Candidate, rater: &str, score: i32) -> proto::Scorecard {
    let interview = org.interview(app, candidate, rater).await;
    let me = token(rater, &org.name, &["interviewer"]);
    let evidence =
        |c: &str| format!("On {c}, the candidate described a concrete situation, what they did, and the result.");
    app.scorecards()
        .submit_scorecard(req(
            &me,
            proto::SubmitScorecardRequest {
                interview: interview.name.clone(),
                ratings: vec![
                    proto::Rating { competency: "api_design".into(), score, evidence: evidence("api_design") },
                    proto::Rating { competency: "collaboration".into(), score, evidence: evidence("collaboration") },
                ],
                recommendation: if score >= 3 { proto::Recommendation::Yes } else { proto::Recommendation::No } as i32,
                summary: String::new(),
                request_id: String::new(),
            },
        ))
        .await
        .expect("submit")
        .into_inner()
}

/// The whole ranking of `org`'s job (one page of up to 1,000), as its admin reads it.
pub async fn full_ranking(app: &TestApp, org: &Org) -> proto::Ranking {
    app.calibration()
        .get_ranking(req(
            &org.admin,
            proto::GetRankingRequest { job: org.job.name.clone(), page_size: 1000, ..Default::default() },
        ))
        .await
        .expect("ranking")
        .into_inner()
}

/// An amendment of the scorecard `name`: `ratings` replace its ratings, the
/// recommendation becomes NO, for `reason`, whatever its current revision.
pub fn amendment(name: &str, ratings: Vec<proto::Rating>, reason: &str) -> proto::AmendScorecardRequest {
    proto::AmendScorecardRequest {
        name: name.to_string(),
        ratings,
        recommendation: proto::Recommendation::No as i32,
        reason: reason.into(),
        ..Default::default()
    }
}

/// Amends a scorecard as `token`; panics if the server refuses.
pub async fn amend(app: &TestApp, token: &str, request: proto::AmendScorecardRequest) -> proto::Scorecard {
    app.scorecards().amend_scorecard(req(token, request)).await.expect("amend").into_inner()
}

/// Generates one `#[tokio::test]` per database for each named async test
/// function: `on_both_databases!(a, b)` for functions taking a started
/// `TestApp`, `on_both_databases!(db: a, b)` for functions taking the `Db` (they
/// start their own servers). The tests are `sqlite::a`, `postgres::a`, …
#[macro_export]
macro_rules! on_both_databases {
    (db: $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Db::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Db::Postgres).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::TestApp::start(super::common::Db::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::TestApp::start(super::common::Db::Postgres).await).await;
                }
            )*
        }
    };
}

/// Spawns `command` (a `scorecard serve`) with its log piped, and returns once
/// it logs that it is serving; the log is drained afterwards so the server
/// never blocks on a full pipe.
pub fn spawn_until_serving(command: &mut std::process::Command) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start scorecard serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    loop {
        let line = lines.next().expect("server exited before serving").expect("read log");
        if line.contains("scorecard serving gRPC") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

/// An organisation of the test's own on this database: pauses are armed per
/// organisation, process-wide, and both databases' suites share the process.
pub fn org_id(test: &str, app: &TestApp) -> String {
    let db = if app.database_url.starts_with("sqlite") { "sqlite" } else { "postgres" };
    format!("{test}-{db}")
}

/// Runs one statement on the test's database, as an operator would; returns
/// the rows it changed.
pub async fn execute(app: &TestApp, sql: &str) -> u64 {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if app.database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect("execute").rows_affected()
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.expect("connect");
        sqlx::raw_sql(sql).execute(&mut conn).await.expect("execute").rows_affected()
    }
}

/// One number (`select count(*) …`) from the test's database.
pub async fn count(app: &TestApp, sql: &str) -> i64 {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if app.database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.expect("connect");
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("count")
    } else {
        let mut conn = sqlx::PgConnection::connect(&app.database_url).await.expect("connect");
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("count")
    }
}

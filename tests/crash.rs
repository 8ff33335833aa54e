//! Crash consistency: concurrent submitters against a real `scorecard serve`
//! process, killed with SIGKILL mid-load at several points and restarted on the
//! same database. Every acknowledged scorecard must be there exactly once with
//! the ratings acknowledged; nothing unacknowledged may be half-written; a
//! retry with the same request id after the crash must be safe.
//!
//! The short profile runs in the test command; `SCORECARD_CRASH_ROUNDS` and
//! `SCORECARD_CRASH_SUBMITTERS` make it longer (see README).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Db, SECRET, rating, req, sample_rubric, token};
use scorecard::proto::{self, Recommendation};
use sqlx::Connection;
use tonic::transport::Channel;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn start_server(dir: &std::path::Path, addr: &str, database_url: &str) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scorecard"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SCORECARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .args(["serve", "--listen", addr, "--http-listen", "off"])
        .env("SCORECARD_DATABASE_URL", database_url)
        .env("SCORECARD_JWT_SECRET", SECRET)
        .env("SCORECARD_RATE_LIMIT_PER_SECOND", "1000000")
        .env("SCORECARD_RATE_LIMIT_BURST", "1000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scorecard serve")
}

async fn connect(addr: &str) -> Channel {
    for _ in 0..200 {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await {
            // Ready when it answers a call (migrations and warm-up done).
            let mut client = proto::rubric_service_client::RubricServiceClient::new(channel.clone());
            let probe = token("probe", "probe", &["admin"]);
            if client.list_rubric_templates(req(&probe, proto::ListRubricTemplatesRequest {})).await.is_ok() {
                return channel;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server at {addr} did not come up");
}

fn kill9(child: &mut Child) {
    let status = Command::new("kill").args(["-KILL", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let _ = child.wait();
}

/// What a submitter sent for an interview, and whether it was acknowledged.
#[derive(Clone, Debug)]
struct Sent {
    request: proto::SubmitScorecardRequest,
    acknowledged: Option<String>,
}

fn scores(r: &proto::SubmitScorecardRequest) -> Vec<(String, i32, String)> {
    r.ratings.iter().map(|x| (x.competency.clone(), x.score, x.evidence.clone())).collect()
}

async fn setup(channel: &Channel, interviews: usize) -> Vec<proto::Interview> {
    let admin = token("root", "acme", &["admin"]);
    let rubric = proto::rubric_service_client::RubricServiceClient::new(channel.clone())
        .create_rubric(req(&admin, proto::CreateRubricRequest { rubric: Some(sample_rubric("Crash")) }))
        .await
        .expect("rubric")
        .into_inner();
    let mut hiring = proto::hiring_service_client::HiringServiceClient::new(channel.clone());
    let job = hiring
        .create_job(req(
            &admin,
            proto::CreateJobRequest {
                job: Some(proto::Job { title: "Crash".into(), rubric: rubric.name, ..Default::default() }),
            },
        ))
        .await
        .expect("job")
        .into_inner();
    let mut out = Vec::new();
    for n in 0..interviews {
        let candidate = hiring
            .create_candidate(req(
                &admin,
                proto::CreateCandidateRequest {
                    candidate: Some(proto::Candidate {
                        external_id: format!("crash-{n}"),
                        display_name: format!("Candidate {n}"),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .expect("candidate")
            .into_inner();
        let interview = hiring
            .create_interview(req(
                &admin,
                proto::CreateInterviewRequest {
                    interview: Some(proto::Interview {
                        job: job.name.clone(),
                        candidate: candidate.name,
                        interviewer: format!("rater-{}", n % 7),
                        focus_competencies: vec!["api_design".into(), "collaboration".into()],
                        scheduled_time: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 }),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .expect("interview")
            .into_inner();
        out.push(interview);
    }
    out
}

/// Submits for `interviews` from `submitters` concurrent tasks until `stop`.
async fn load(
    channel: Channel,
    interviews: Vec<proto::Interview>,
    submitters: usize,
    sent: Arc<Mutex<BTreeMap<String, Sent>>>,
    round: usize,
) {
    let queue = Arc::new(Mutex::new(interviews));
    let admin = token("sync", "acme", &["integration"]);
    let mut tasks = Vec::new();
    for s in 0..submitters {
        let (channel, queue, sent, admin) = (channel.clone(), queue.clone(), sent.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = proto::scorecard_service_client::ScorecardServiceClient::new(channel);
            loop {
                let Some(interview) = queue.lock().unwrap().pop() else { return };
                let n = interview.name.len() + s + round;
                let request = proto::SubmitScorecardRequest {
                    interview: interview.name.clone(),
                    ratings: vec![
                        rating("api_design", 1 + (n % 4) as i32),
                        rating("collaboration", 1 + (n / 3 % 4) as i32),
                    ],
                    recommendation: Recommendation::Yes as i32,
                    summary: format!("round {round}, submitter {s}"),
                    request_id: format!("crash-{}", interview.name.trim_start_matches("interviews/")),
                };
                sent.lock()
                    .unwrap()
                    .insert(interview.name.clone(), Sent { request: request.clone(), acknowledged: None });
                match client.submit_scorecard(req(&admin, request)).await {
                    Ok(response) => {
                        if let Some(entry) = sent.lock().unwrap().get_mut(&interview.name) {
                            entry.acknowledged = Some(response.into_inner().name);
                        }
                    }
                    // The server is gone: this submitter is done.
                    Err(_) => return,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Every scorecard of the organisation by interview.
async fn stored(channel: &Channel) -> HashMap<String, Vec<proto::Scorecard>> {
    let admin = token("root", "acme", &["admin"]);
    let mut client = proto::scorecard_service_client::ScorecardServiceClient::new(channel.clone());
    let mut by_interview: HashMap<String, Vec<proto::Scorecard>> = HashMap::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_scorecards(req(
                &admin,
                proto::ListScorecardsRequest { page_size: 1000, page_token: page_token.clone(), ..Default::default() },
            ))
            .await
            .expect("list scorecards")
            .into_inner();
        for s in page.scorecards {
            by_interview.entry(s.interview.clone()).or_default().push(s);
        }
        if page.next_page_token.is_empty() {
            return by_interview;
        }
        page_token = page.next_page_token;
    }
}

async fn keeps_every_acknowledged_scorecard_through_sigkill(db: Db) {
    let rounds = env_number("SCORECARD_CRASH_ROUNDS", 3);
    let submitters = env_number("SCORECARD_CRASH_SUBMITTERS", 16);
    let per_round = env_number("SCORECARD_CRASH_INTERVIEWS", 400);
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, schema) = match db {
        Db::Sqlite => (format!("sqlite://{}", dir.path().join("crash.db").display()), None),
        Db::Postgres => {
            let admin_url = common::postgres_url();
            let schema = format!("crash_{}", std::process::id());
            let mut conn = sqlx::PgConnection::connect(&admin_url).await.expect("PostgreSQL for the crash test");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "drop schema if exists {schema} cascade; create schema {schema}"
            )))
            .execute(&mut conn)
            .await
            .expect("schema");
            let sep = if admin_url.contains('?') { '&' } else { '?' };
            (format!("{admin_url}{sep}options=-c%20search_path%3D{schema}"), Some((admin_url, schema)))
        }
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = start_server(dir.path(), &addr, &url);
    let mut channel = connect(&addr).await;
    let interviews = setup(&channel, per_round * rounds).await;
    let sent: Arc<Mutex<BTreeMap<String, Sent>>> = Arc::new(Mutex::new(BTreeMap::new()));

    // Kill points spread over a round: early, middle, late.
    let kill_after = [Duration::from_millis(150), Duration::from_millis(450), Duration::from_millis(900)];
    let mut requests = 0;
    for round in 0..rounds {
        let batch: Vec<proto::Interview> = interviews[round * per_round..(round + 1) * per_round].to_vec();
        let load = tokio::spawn(load(channel.clone(), batch, submitters, sent.clone(), round));
        tokio::time::sleep(kill_after[round % kill_after.len()]).await;
        kill9(&mut server);
        let _ = load.await;
        requests = sent.lock().unwrap().len();
        server = start_server(dir.path(), &addr, &url);
        channel = connect(&addr).await;
    }

    // Check against what the clients were told.
    let found = stored(&channel).await;
    let sent = sent.lock().unwrap().clone();
    let acknowledged = sent.values().filter(|s| s.acknowledged.is_some()).count();
    let (mut lost, mut half_written) = (0, 0);
    let duplicated = found.values().filter(|v| v.len() > 1).count();
    for (interview, s) in &sent {
        let stored = found.get(interview).and_then(|v| v.first());
        match (&s.acknowledged, stored) {
            (Some(_), None) => lost += 1,
            (Some(name), Some(card)) if &card.name != name || scores(&s.request) != scores_of(card) => lost += 1,
            // Unacknowledged: all or nothing.
            (None, Some(card)) if scores(&s.request) != scores_of(card) => half_written += 1,
            _ => {}
        }
    }
    // Scorecards nobody sent would be corruption too.
    let unexplained = found.keys().filter(|i| !sent.contains_key(*i)).count();

    // Retrying every unacknowledged submission with its request id is safe.
    let integration = token("sync", "acme", &["integration"]);
    let mut client = proto::scorecard_service_client::ScorecardServiceClient::new(channel.clone());
    for s in sent.values().filter(|s| s.acknowledged.is_none()) {
        let retried = client.submit_scorecard(req(&integration, s.request.clone())).await.expect("retry after crash");
        assert_eq!(scores_of(retried.get_ref()), scores(&s.request));
    }
    let after_retries = stored(&channel).await;
    assert!(after_retries.values().all(|v| v.len() == 1), "one scorecard per interview after retries");
    assert_eq!(after_retries.len(), sent.len(), "every attempted interview has its scorecard after retries");

    println!(
        "crash test ({db:?}): {rounds} SIGKILLs survived, {requests} submissions sent by {submitters} submitters, \
         {acknowledged} acknowledged, {} found, lost {lost}, duplicated {duplicated}, half-written {half_written}, \
         unexplained {unexplained}",
        found.len()
    );
    assert!(acknowledged > 0, "the load ran before the kills");
    assert_eq!((lost, duplicated, half_written, unexplained), (0, 0, 0, 0));
    kill9(&mut server);
    if let Some((admin_url, schema)) = schema
        && let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await
    {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("drop schema if exists {schema} cascade")))
            .execute(&mut conn)
            .await;
    }
}

fn scores_of(card: &proto::Scorecard) -> Vec<(String, i32, String)> {
    card.ratings.iter().map(|x| (x.competency.clone(), x.score, x.evidence.clone())).collect()
}

on_both_databases!(db: keeps_every_acknowledged_scorecard_through_sigkill);

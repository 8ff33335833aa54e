//! `scorecard bench import`: back-fills a synthetic ATS history through
//! `ImportScorecards` against a server of its own (a throw-away SQLite file, or
//! the PostgreSQL database given) and prints how long it took.

use std::sync::Arc;
use std::time::Instant;

use tonic::Request;
use tonic::transport::Channel;

use scorecard::api::convert::timestamp;
use scorecard::auth::{Claims, Verifier, mint_token};
use scorecard::proto::{self, import_item::Item};
use scorecard::server::AppError;
use scorecard::store::Store;

/// Items per message (the most one message may carry).
const ITEMS_PER_MESSAGE: usize = 1_000;
/// Items per stream (the most one call takes).
const ITEMS_PER_STREAM: usize = scorecard::api::MAX_IMPORT_ITEMS_PER_STREAM;

/// `jobs` jobs `job-0`, `job-1`, … on `rubric`, as import items.
pub(crate) fn job_items(rubric: &proto::Rubric, jobs: usize) -> Vec<Item> {
    (0..jobs)
        .map(|j| {
            Item::Job(proto::ImportJob {
                external_id: format!("job-{j}"),
                title: format!("Backend Engineer {j}"),
                rubric: rubric.name.clone(),
                rubric_revision: 0,
            })
        })
        .collect()
}

/// Focus competencies of each interview, one rating each on its scorecard.
const RATINGS_PER_SCORECARD: usize = 3;

/// The synthetic history: `scorecards` interviews with a scorecard each, four
/// per candidate, spread over 100 jobs and `raters` interviewers.
pub(crate) fn history(rubric: &proto::Rubric, scorecards: usize, raters: usize) -> Vec<proto::ImportItem> {
    let raters = raters.max(1);
    let keys: Vec<String> = rubric.competencies.iter().map(|c| c.key.clone()).collect();
    let scale = rubric.scale.unwrap_or_default();
    let jobs = 100.min(scorecards.max(1));
    let candidates = scorecards.div_ceil(4);
    let mut items = Vec::with_capacity(jobs + candidates + 2 * scorecards);
    items.extend(job_items(rubric, jobs));
    for c in 0..candidates {
        items.push(Item::Candidate(proto::ImportCandidate {
            external_id: format!("cand-{c}"),
            display_name: format!("Candidate {c}"),
            email: format!("cand-{c}@example.com"),
        }));
    }
    // Over 400 days ending two hours ago: a minute apart, closer when there
    // are more than 400 days of minutes (each scorecard is submitted an hour
    // after its interview, and none may be submitted in the future).
    let span: i64 = 400 * 24 * 3_600 * 1_000_000;
    let start = scorecard::domain::now_micros() - span - 2 * 3_600 * 1_000_000;
    let spacing = (span / (scorecards.max(1) as i64 + 1)).min(60_000_000);
    // Ratings as panels give them: each candidate's level, each
    // interviewer's severity, noise; rounded onto the scale.
    let mut rng = crate::cmd::synthetic::Rng::new(2026);
    let level: Vec<f64> = (0..candidates).map(|_| rng.normal() * 0.8).collect();
    let severity: Vec<f64> = (0..raters).map(|_| rng.normal() * 0.4).collect();
    let middle = f64::from(scale.min + scale.max) / 2.0;
    // Each candidate's panel: four interviewers drawn at random (distinct
    // while there are four). A fixed stride instead (rater n·7 + c) made the
    // interviewers who share candidates a chain around the organisation,
    // which a fit crosses one link per sweep: 101 sweeps at 2,000 raters.
    let mut draw = crate::cmd::synthetic::Rng::new(7);
    let mut panel: Vec<usize> = Vec::with_capacity(4);
    for n in 0..scorecards {
        let candidate = n / 4;
        let focus: Vec<String> = (0..RATINGS_PER_SCORECARD).map(|k| keys[(n + k * 3) % keys.len()].clone()).collect();
        let when = start + (n as i64) * spacing;
        if n % 4 == 0 {
            panel.clear();
            while panel.len() < 4 {
                let rater = draw.below(raters);
                if !panel.contains(&rater) || raters < 4 {
                    panel.push(rater);
                }
            }
        }
        let rater = panel[n % 4];
        let scores: Vec<i32> = (0..focus.len())
            .map(|_| {
                let latent = middle + level[candidate] + severity[rater] + rng.normal() * 0.6;
                (latent.round() as i32).clamp(scale.min, scale.max)
            })
            .collect();
        items.push(Item::Interview(proto::ImportInterview {
            external_id: format!("int-{n}"),
            job_external_id: format!("job-{}", candidate % jobs),
            candidate_external_id: format!("cand-{candidate}"),
            interviewer: format!("rater-{rater}"),
            focus_competencies: focus.clone(),
            scheduled_time: timestamp(when),
        }));
        items.push(Item::Scorecard(proto::ImportScorecard {
            interview_external_id: format!("int-{n}"),
            ratings: focus
                .iter()
                .enumerate()
                .map(|(k, key)| proto::Rating {
                    competency: key.clone(),
                    score: scores[k],
                    evidence: format!(
                        "Walked through the design of a rate limiter, named the trade-off between accuracy and \
                         memory, and chose a sliding window ({key})."
                    ),
                })
                .collect(),
            recommendation: proto::Recommendation::Yes as i32,
            summary: "Imported from the ATS.".into(),
            submit_time: timestamp(when + 3_600_000_000),
        }));
    }
    items.into_iter().map(|item| proto::ImportItem { item: Some(item) }).collect()
}

pub(crate) fn authorised<T>(token: &str, message: T) -> Result<Request<T>, AppError> {
    let mut request = Request::new(message);
    let value =
        format!("Bearer {token}").parse().map_err(|_| AppError::Config("token is not a header value".into()))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// A server of the benchmark's own on a throw-away SQLite file (or the
/// PostgreSQL database given), with a token for a fresh organisation.
pub(crate) struct BenchServer {
    pub channel: Channel,
    addr: std::net::SocketAddr,
    pub token: String,
    /// The organisation of `token`, and the secret that signed it.
    org: String,
    secret: String,
    pub kind: &'static str,
    store: Store,
    url: String,
    dir: std::path::PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), AppError>>,
}

/// What [`BenchServer::serve`] starts.
struct Running {
    store: Store,
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), AppError>>,
    channel: Channel,
}

impl BenchServer {
    /// Starts it; `settings` as `serve` would take them.
    pub async fn start(database_url: Option<String>, settings: scorecard::server::Settings) -> Result<Self, AppError> {
        let dir = tempfile_dir()?;
        let url = database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let Running { store, addr, stop, server, channel } = Self::serve(&url, &secret, settings).await?;
        let org = format!("bench-{}", scorecard::domain::new_id());
        let token = token_for(&secret, &org, "ats-sync", "admin")?;
        Ok(Self { channel, addr, token, org, secret, kind: store.kind(), store, url, dir, stop, server })
    }

    /// A server on `url` behind a fresh connection pool, and a channel to it.
    async fn serve(url: &str, secret: &str, settings: scorecard::server::Settings) -> Result<Running, AppError> {
        let store = Store::connect(url, 16).await?;
        store.migrate().await?;
        let verifier = Verifier::new(Some(secret), None, None, None).map_err(|e| AppError::Config(e.to_string()))?;
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| AppError::Server(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| AppError::Server(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server_store = store.clone();
        let server = tokio::spawn(async move {
            scorecard::server::serve(listener, None, server_store, Arc::new(verifier), settings, async {
                let _ = stopped.await;
            })
            .await
        });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .map_err(|e| AppError::Server(e.to_string()))?
            .connect()
            .await
            .map_err(|e| AppError::Server(e.to_string()))?;
        Ok(Running { store, addr, stop, server, channel })
    }

    /// Stops the server and starts another on the same database, as a
    /// deployment's restart does: nothing of the first one's memory carries
    /// over (the calibration state comes from the snapshot the stop wrote,
    /// or with `settings.calibration_snapshots` off is loaded and fitted
    /// afresh). Returns once the new one accepts connections, with the moment
    /// it began starting and how long the stop took.
    pub async fn restart(
        &mut self,
        settings: scorecard::server::Settings,
    ) -> Result<(Instant, std::time::Duration), AppError> {
        let stopping = Instant::now();
        let (stop, _) = tokio::sync::oneshot::channel::<()>();
        let _ = std::mem::replace(&mut self.stop, stop).send(());
        let stopped = std::mem::replace(&mut self.server, tokio::spawn(async { Ok(()) }));
        let _ = stopped.await;
        self.store.close().await;
        let stopping = stopping.elapsed();
        let started = Instant::now();
        let Running { store, addr, stop, server, channel } = Self::serve(&self.url, &self.secret, settings).await?;
        (self.store, self.addr, self.stop, self.server, self.channel) = (store, addr, stop, server, channel);
        Ok((started, stopping))
    }

    /// A token of the same organisation for user `sub` with one role.
    pub fn token_with_role(&self, sub: &str, role: &str) -> Result<String, AppError> {
        token_for(&self.secret, &self.org, sub, role)
    }

    /// `http://host:port` of the server.
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A rubric from the built-in Backend Engineer template.
    pub async fn rubric(&self) -> Result<proto::Rubric, AppError> {
        Ok(proto::rubric_service_client::RubricServiceClient::new(self.channel.clone())
            .create_rubric_from_template(authorised(
                &self.token,
                proto::CreateRubricFromTemplateRequest { template: "backend-engineer".into() },
            )?)
            .await
            .map_err(|s| AppError::Server(s.message().to_string()))?
            .into_inner())
    }

    /// Stops the server and removes the throw-away database.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.store.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn token_for(secret: &str, org: &str, sub: &str, role: &str) -> Result<String, AppError> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: sub.into(),
        org: org.into(),
        roles: vec![role.into()],
        exp: now + 3_600,
        nbf: None,
        iat: Some(now),
        iss: None,
        aud: None,
    };
    mint_token(secret, &claims).map_err(|e| AppError::Config(e.to_string()))
}

/// Imports `items` in as few streams as the server takes; (created, failed).
/// With `verbose`, prints a line per stream.
pub(crate) async fn import_items(
    channel: Channel,
    token: &str,
    items: &[proto::ImportItem],
    verbose: bool,
) -> Result<(i64, i64), AppError> {
    let mut client = proto::scorecard_service_client::ScorecardServiceClient::new(channel)
        .max_decoding_message_size(64 * 1024 * 1024);
    let (mut created, mut failed) = (0, 0);
    for (n, stream_items) in items.chunks(ITEMS_PER_STREAM).enumerate() {
        let messages: Vec<proto::ImportScorecardsRequest> = stream_items
            .chunks(ITEMS_PER_MESSAGE)
            .map(|chunk| proto::ImportScorecardsRequest { items: chunk.to_vec() })
            .collect();
        let call_started = Instant::now();
        let response = client
            .import_scorecards(authorised(token, tokio_stream::iter(messages))?)
            .await
            .map_err(|s| AppError::Server(s.message().to_string()))?
            .into_inner();
        created += response.created;
        failed += response.failed;
        if verbose {
            println!(
                "  stream {}: {} items in {:.2} s (created {}, unchanged {}, failed {})",
                n + 1,
                response.received,
                call_started.elapsed().as_secs_f64(),
                response.created,
                response.unchanged,
                response.failed
            );
        }
    }
    Ok((created, failed))
}

/// Runs the benchmark and prints its figures.
/// Then the server is restarted on the same database once per entry of
/// `restarts` (with calibration snapshots on or off) and the restart to
/// serving and GetRanking's latency are timed.
pub async fn run(
    scorecards: usize,
    raters: usize,
    database_url: Option<String>,
    streams: usize,
    restarts: &[bool],
) -> Result<(), AppError> {
    let mut bench = BenchServer::start(database_url, unthrottled()).await?;
    let channel = bench.channel.clone();
    let channel_for_read = bench.channel.clone();
    let token = bench.token.clone();
    let rubric = bench.rubric().await?;
    let items = history(&rubric, scorecards, raters);
    let total = items.len();
    println!(
        "import benchmark: {scorecards} scorecards ({} ratings) by {raters} interviewers, {total} items in all, \
         database {}, {streams} stream(s) at once",
        scorecards * 3,
        bench.kind
    );
    let started = Instant::now();
    // Jobs and candidates first; then the interviews with their scorecards
    // (pairs, kept together) in `streams` parts imported side by side.
    let first_interview = items.iter().position(|i| matches!(i.item, Some(Item::Interview(_)))).unwrap_or(items.len());
    let (mut created, mut failed) = import_items(channel.clone(), &token, &items[..first_interview], true).await?;
    let tail_len = items.len() - first_interview;
    let part = tail_len.div_ceil(2 * streams).max(1) * 2;
    let items = Arc::new(items);
    let mut parts = tokio::task::JoinSet::new();
    for from in (first_interview..items.len()).step_by(part) {
        let (channel, token, items) = (channel.clone(), token.clone(), Arc::clone(&items));
        let to = (from + part).min(items.len());
        parts.spawn(async move { import_items(channel, &token, &items[from..to], true).await });
    }
    while let Some(done) = parts.join_next().await {
        let (c, f) = done.map_err(|e| AppError::Server(format!("import stream: {e}")))??;
        created += c;
        failed += f;
    }
    let elapsed = started.elapsed();
    println!(
        "imported {scorecards} scorecards ({total} items) in {:.1} s: {:.0} scorecards/s, {:.0} items/s; \
         created {created}, failed {failed}",
        elapsed.as_secs_f64(),
        scorecards as f64 / elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    // The organisation is loaded and fitted once the imports stop (or by the
    // first calibration read): timed apart from the import itself.
    let read_started = Instant::now();
    let ranked = first_ranking(channel_for_read, &token).await?;
    println!(
        "first ranking read after the import: {:.2} s (the organisation loaded and fitted; {ranked} entries on its page)",
        read_started.elapsed().as_secs_f64()
    );
    let rate = scorecards as f64 / elapsed.as_secs_f64();
    println!(
        "target: 20,000 scorecards/s with their interviews -> {}",
        if rate >= 20_000.0 { "met" } else { "missed" }
    );
    drop(items);
    for &snapshots in restarts {
        let mut settings = unthrottled();
        settings.calibration_snapshots = snapshots;
        let (started, stopping) = bench.restart(settings).await?;
        let listening = started.elapsed();
        let ranked = first_ranking(bench.channel.clone(), &bench.token).await?;
        let serving = started.elapsed();
        // Issue 21's targets are for an organisation of 10,000,000 ratings;
        // a smaller run is within them or over them, not a verdict on them.
        println!(
            "restart on the same database, calibration snapshots {}: the stop took {:.2} s; listening after {:.2} s; \
             first ranking page ({ranked} entries) after {:.1} s (target 30 s at 10,000,000 ratings; this run's {} \
             ratings: {})",
            if snapshots { "on" } else { "off (read every scorecard, fit afresh)" },
            stopping.as_secs_f64(),
            listening.as_secs_f64(),
            serving.as_secs_f64(),
            scorecards * RATINGS_PER_SCORECARD,
            if serving.as_secs_f64() <= 30.0 { "within it" } else { "over it" }
        );
        ranking_latency(&bench).await?;
    }
    bench.finish().await;
    if failed > 0 {
        return Err(AppError::Server(format!("{failed} items failed to import")));
    }
    Ok(())
}

/// Settings of the benchmark's server: `serve`'s defaults without the
/// per-caller rate limit (one caller makes every call here).
fn unthrottled() -> scorecard::server::Settings {
    let mut settings = scorecard::server::Settings::default();
    settings.guard.rate_per_second = 1e9;
    settings.guard.burst = 1e9;
    settings
}

/// Calls timed for GetRanking's latency after a restart.
const RANKING_READS: usize = 2_000;

/// GetRanking of the API's default page (50 entries), one caller, round the
/// jobs: prints the latency's median, p99 and maximum.
async fn ranking_latency(bench: &BenchServer) -> Result<(), AppError> {
    let jobs = proto::hiring_service_client::HiringServiceClient::new(bench.channel.clone())
        .list_jobs(authorised(&bench.token, proto::ListJobsRequest { page_size: 1000, ..Default::default() })?)
        .await
        .map_err(|s| AppError::Server(s.message().to_string()))?
        .into_inner()
        .jobs;
    if jobs.is_empty() {
        return Ok(());
    }
    let mut client = proto::calibration_service_client::CalibrationServiceClient::new(bench.channel.clone());
    let mut times = Vec::with_capacity(RANKING_READS);
    let mut entries = 0;
    for n in 0..RANKING_READS {
        let request = proto::GetRankingRequest { job: jobs[n % jobs.len()].name.clone(), ..Default::default() };
        let started = Instant::now();
        let page = client
            .get_ranking(authorised(&bench.token, request)?)
            .await
            .map_err(|s| AppError::Server(s.message().to_string()))?
            .into_inner();
        times.push(started.elapsed().as_secs_f64() * 1e3);
        entries += page.entries.len();
    }
    times.sort_by(f64::total_cmp);
    let p99 = times[times.len() * 99 / 100];
    println!(
        "GetRanking, default page, one caller round {} jobs: {RANKING_READS} calls ({:.0} entries a page), \
         p50 {:.2} ms, p99 {p99:.2} ms, max {:.2} ms (target p99 10 ms at 10,000,000 ratings: {})",
        jobs.len(),
        entries as f64 / RANKING_READS as f64,
        times[times.len() / 2],
        times[times.len() - 1],
        if p99 <= 10.0 { "within it" } else { "over it" }
    );
    Ok(())
}

/// Reads the first page of the first job's ranking; its number of entries.
/// Asked again while the server answers DEADLINE_EXCEEDED (a call waits at
/// most 30 s, and loading a large organisation takes longer; the load goes on
/// meanwhile), as a client would.
async fn first_ranking(channel: Channel, token: &str) -> Result<usize, AppError> {
    loop {
        match read_first_ranking(channel.clone(), token).await {
            Err(status) if status.code() == tonic::Code::DeadlineExceeded => continue,
            Err(status) => return Err(AppError::Server(status.message().to_string())),
            Ok(entries) => return Ok(entries),
        }
    }
}

async fn read_first_ranking(channel: Channel, token: &str) -> Result<usize, tonic::Status> {
    fn authorised<T>(token: &str, message: T) -> Result<Request<T>, tonic::Status> {
        self::authorised(token, message).map_err(|e| tonic::Status::internal(e.to_string()))
    }
    let jobs = proto::hiring_service_client::HiringServiceClient::new(channel.clone())
        .list_jobs(authorised(token, proto::ListJobsRequest { page_size: 1, ..Default::default() })?)
        .await?
        .into_inner();
    let Some(job) = jobs.jobs.first() else { return Ok(0) };
    let ranking = proto::calibration_service_client::CalibrationServiceClient::new(channel)
        .get_ranking(authorised(token, proto::GetRankingRequest { job: job.name.clone(), ..Default::default() })?)
        .await?
        .into_inner();
    Ok(ranking.entries.len())
}

pub(crate) fn tempfile_dir() -> Result<std::path::PathBuf, AppError> {
    let dir = std::env::temp_dir().join(format!("scorecard-bench-{}", scorecard::domain::new_id()));
    std::fs::create_dir_all(&dir).map_err(|e| AppError::Config(format!("temporary directory: {e}")))?;
    Ok(dir)
}

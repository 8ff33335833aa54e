//! `scorecard bench load`: a gRPC load generator written with the project's own
//! tonic client. It measures, in one run and on one server, the transport
//! ceiling (health checks) and then a mix of SubmitScorecard, GetRanking of a
//! 1,000-candidate job and ListScorecards, printing throughput, latency
//! percentiles and errors per RPC and each RPC's ratio to the ceiling.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::cmd::bench::import::{BenchServer, authorised};
use scorecard::proto::{self, import_item::Item};
use scorecard::server::AppError;

/// What `scorecard bench load` was asked to do.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Load an external server instead of starting one (needs `token`).
    pub addr: Option<String>,
    pub token: Option<String>,
    /// Database of the server started here; default a throw-away SQLite file.
    pub database_url: Option<String>,
    pub connections: usize,
    pub concurrency: usize,
    pub duration: Duration,
    /// Weights of submit, ranking and list.
    pub mix: Vec<(String, u32)>,
    /// Candidates of the ranked job.
    pub candidates: usize,
    /// Interviews prepared for submissions.
    pub submit_pool: usize,
    /// Entries per GetRanking call.
    pub ranking_page_size: i32,
    /// An external server's process on this machine, for its memory.
    pub server_pid: Option<u32>,
}

/// Parses `submit=2,ranking=1,list=1`.
pub fn parse_mix(text: &str) -> Result<Vec<(String, u32)>, String> {
    let mut mix = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, weight) = part.split_once('=').ok_or_else(|| format!("`{part}`: use name=weight"))?;
        let name = name.trim();
        if !["submit", "ranking", "list"].contains(&name) {
            return Err(format!("`{name}` is not one of submit, ranking, list"));
        }
        let weight: u32 = weight.trim().parse().map_err(|_| format!("`{part}`: the weight must be a whole number"))?;
        mix.push((name.to_string(), weight));
    }
    if mix.iter().map(|(_, w)| w).sum::<u32>() == 0 {
        return Err("the mix needs a positive weight".into());
    }
    Ok(mix)
}

#[derive(Default)]
struct Tally {
    /// Latencies of successful calls, microseconds.
    ok: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

struct Plan {
    job: String,
    interviews: Vec<String>,
    /// The competencies every interview focuses on.
    focus: Vec<String>,
}

fn candidate(n: usize) -> Item {
    Item::Candidate(proto::ImportCandidate {
        external_id: format!("load-c-{n}"),
        display_name: format!("Candidate {n}"),
        email: String::new(),
    })
}

fn interview(ext: String, job: &str, cand: usize, rater: usize, focus: &[String]) -> Item {
    Item::Interview(proto::ImportInterview {
        external_id: ext,
        job_external_id: job.into(),
        candidate_external_id: format!("load-c-{cand}"),
        interviewer: format!("rater-{rater}"),
        focus_competencies: focus.to_vec(),
        scheduled_time: scorecard::api::convert::timestamp(scorecard::domain::now_micros() - 86_400_000_000),
    })
}

fn ratings(focus: &[String], n: usize) -> Vec<proto::Rating> {
    focus
        .iter()
        .enumerate()
        .map(|(k, key)| proto::Rating {
            competency: key.clone(),
            score: 1 + ((n * 7 + k * 3) % 4) as i32,
            evidence: "Explained the trade-off between consistency and latency with a concrete incident.".into(),
        })
        .collect()
}

/// The ranked job (its candidates each with four scorecards) and a pool of
/// interviews awaiting a scorecard, loaded through ImportScorecards.
async fn prepare(channel: &Channel, token: &str, options: &LoadOptions) -> Result<Plan, AppError> {
    let rubric = proto::rubric_service_client::RubricServiceClient::new(channel.clone())
        .create_rubric_from_template(authorised(
            token,
            proto::CreateRubricFromTemplateRequest { template: "backend-engineer".into() },
        )?)
        .await
        .map_err(|s| AppError::Server(s.message().to_string()))?
        .into_inner();
    let focus: Vec<String> = rubric.competencies.iter().take(3).map(|c| c.key.clone()).collect();
    let mut items = Vec::new();
    for (ext, title) in [("load-ranked", "Ranked job"), ("load-pool", "Submissions")] {
        items.push(Item::Job(proto::ImportJob {
            external_id: ext.into(),
            title: title.into(),
            rubric: rubric.name.clone(),
            rubric_revision: 0,
        }));
    }
    let pool_candidates = options.submit_pool.div_ceil(4);
    for n in 0..options.candidates + pool_candidates {
        items.push(candidate(n));
    }
    for c in 0..options.candidates {
        for k in 0..4 {
            let ext = format!("load-r-{c}-{k}");
            items.push(interview(ext.clone(), "load-ranked", c, (c + k * 11) % 60, &focus));
            items.push(Item::Scorecard(proto::ImportScorecard {
                interview_external_id: ext,
                ratings: ratings(&focus, c + k),
                recommendation: proto::Recommendation::Yes as i32,
                summary: String::new(),
                submit_time: None,
            }));
        }
    }
    let pool_start = items.len();
    for n in 0..options.submit_pool {
        items.push(interview(format!("load-p-{n}"), "load-pool", options.candidates + n / 4, n % 60, &focus));
    }
    let items: Vec<proto::ImportItem> = items.into_iter().map(|item| proto::ImportItem { item: Some(item) }).collect();
    let mut client = proto::scorecard_service_client::ScorecardServiceClient::new(channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut results = Vec::with_capacity(items.len());
    for stream in items.chunks(scorecard::api::MAX_IMPORT_ITEMS_PER_STREAM) {
        let messages: Vec<_> =
            stream.chunks(1_000).map(|c| proto::ImportScorecardsRequest { items: c.to_vec() }).collect();
        let response = client
            .import_scorecards(authorised(token, tokio_stream::iter(messages))?)
            .await
            .map_err(|s| AppError::Server(s.message().to_string()))?
            .into_inner();
        if response.failed > 0 {
            return Err(AppError::Server(format!("{} set-up items failed to import", response.failed)));
        }
        results.extend(response.results.into_iter().map(|r| r.resource));
    }
    Ok(Plan { job: results[0].clone(), interviews: results[pool_start..].to_vec(), focus })
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)] as f64 / 1_000.0
}

fn code_name(status: &tonic::Status) -> String {
    scorecard::server::audit::code_name(status.code()).to_string()
}

/// Runs `concurrency` workers for `duration`, each call chosen by `pick`.
/// User and system CPU time of process `pid` (this one: `None`) so far, in
/// seconds, from /proc (Linux); `None` elsewhere.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces: count fields after its closing ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (user, system): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // Clock ticks: USER_HZ, which Linux fixes at 100 for user space.
    Some((user + system) / 100.0)
}

async fn phase(
    channels: &[Channel],
    options: &LoadOptions,
    token: &str,
    plan: &Plan,
    health_only: bool,
) -> (BTreeMap<String, Tally>, Duration) {
    let pool = std::sync::Arc::new(std::sync::Mutex::new(plan.interviews.clone()));
    let total: u32 = options.mix.iter().map(|(_, w)| w).sum();
    let started = Instant::now();
    let until = started + options.duration;
    let mut workers = Vec::new();
    for w in 0..options.concurrency {
        let channel = channels[w % channels.len()].clone();
        let (token, job, mix, pool) = (token.to_string(), plan.job.clone(), options.mix.clone(), pool.clone());
        let focus = plan.focus.clone();
        let ranking_page_size = options.ranking_page_size;
        workers.push(tokio::spawn(async move {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
            let mut scorecards = proto::scorecard_service_client::ScorecardServiceClient::new(channel.clone());
            let mut calibration = proto::calibration_service_client::CalibrationServiceClient::new(channel);
            let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
            let mut n = w;
            while Instant::now() < until {
                n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let op = if health_only {
                    "health".to_string()
                } else {
                    let mut roll = ((n >> 33) as u32) % total;
                    mix.iter()
                        .find(|(_, weight)| {
                            let hit = roll < *weight;
                            roll = roll.saturating_sub(*weight);
                            hit
                        })
                        .map(|(name, _)| name.clone())
                        .unwrap_or_default()
                };
                let t = Instant::now();
                let result: Result<(), tonic::Status> = match op.as_str() {
                    "health" => {
                        health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.map(|_| ())
                    }
                    "submit" => {
                        let Some(interview) = pool.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                            // Every prepared interview has its scorecard: this caller stops.
                            *tallies
                                .entry("submit".into())
                                .or_default()
                                .errors
                                .entry("POOL_EMPTY".into())
                                .or_default() += 1;
                            break;
                        };
                        let request = proto::SubmitScorecardRequest {
                            request_id: format!("load-{}", interview.trim_start_matches("interviews/")),
                            interview,
                            ratings: ratings(&focus, n),
                            recommendation: proto::Recommendation::Yes as i32,
                            summary: String::new(),
                        };
                        match authorised(&token, request) {
                            Ok(r) => scorecards.submit_scorecard(r).await.map(|_| ()),
                            Err(_) => Err(tonic::Status::internal("token")),
                        }
                    }
                    "ranking" => match authorised(
                        &token,
                        proto::GetRankingRequest {
                            job: job.clone(),
                            page_size: ranking_page_size,
                            ..Default::default()
                        },
                    ) {
                        Ok(r) => calibration.get_ranking(r).await.map(|_| ()),
                        Err(_) => Err(tonic::Status::internal("token")),
                    },
                    _ => match authorised(
                        &token,
                        proto::ListScorecardsRequest { job: job.clone(), page_size: 50, ..Default::default() },
                    ) {
                        Ok(r) => scorecards.list_scorecards(r).await.map(|_| ()),
                        Err(_) => Err(tonic::Status::internal("token")),
                    },
                };
                let tally = tallies.entry(op).or_default();
                match result {
                    Ok(()) => tally.ok.push(t.elapsed().as_micros() as u64),
                    Err(status) => *tally.errors.entry(code_name(&status)).or_default() += 1,
                }
            }
            tallies
        }));
    }
    let mut merged: BTreeMap<String, Tally> = BTreeMap::new();
    for worker in workers {
        if let Ok(tallies) = worker.await {
            for (op, t) in tallies {
                let m = merged.entry(op).or_default();
                m.ok.extend(t.ok);
                for (code, count) in t.errors {
                    *m.errors.entry(code).or_default() += count;
                }
            }
        }
    }
    (merged, started.elapsed())
}

/// Runs the benchmark and prints its figures.
pub async fn run(options: LoadOptions) -> Result<(), AppError> {
    let mut settings = scorecard::server::Settings::default();
    // The generator is one token: lift the per-token limit and the in-flight cap.
    settings.guard.rate_per_second = 1e9;
    settings.guard.burst = 1e9;
    settings.guard.max_concurrent = 100_000;
    let (own, addr, token, kind) = match (&options.addr, &options.token) {
        (Some(addr), Some(token)) => (None, addr.clone(), token.clone(), "external".to_string()),
        (Some(_), None) => return Err(AppError::Config("--addr needs --token (or SCORECARD_TOKEN)".into())),
        (None, _) => {
            let server = BenchServer::start(options.database_url.clone(), settings).await?;
            let addr = server.addr();
            let (token, kind) = (server.token.clone(), server.kind.to_string());
            (Some(server), addr, token, kind)
        }
    };
    let mut channels = Vec::new();
    for _ in 0..options.connections.max(1) {
        channels.push(
            Channel::from_shared(addr.clone())
                .map_err(|e| AppError::Config(e.to_string()))?
                .connect()
                .await
                .map_err(|e| AppError::Server(format!("cannot connect to {addr}: {e}")))?,
        );
    }
    println!(
        "load benchmark: database {kind}, {} connections, {} concurrent callers, {:?} per phase, {} entries per ranking page",
        channels.len(),
        options.concurrency,
        options.duration,
        options.ranking_page_size
    );
    let prepared = Instant::now();
    let plan = prepare(&channels[0], &token, &options).await?;
    println!(
        "  set-up: a job of {} candidates (4 scorecards each) and {} interviews to submit for, in {:.1} s",
        options.candidates,
        plan.interviews.len(),
        prepared.elapsed().as_secs_f64()
    );
    let (ceiling, ceiling_time) = phase(&channels, &options, &token, &plan, true).await;
    let ceiling_rate = ceiling.get("health").map_or(0.0, |t| t.ok.len() as f64 / ceiling_time.as_secs_f64());
    // The server's CPU over the mix: the "CPU per submission" is read
    // from the server process (the generator's own when it runs inside).
    let cpu_pid = options.server_pid;
    let cpu_before = cpu_seconds(cpu_pid);
    let (mix, mix_time) = phase(&channels, &options, &token, &plan, false).await;
    let cpu_used = cpu_seconds(cpu_pid).zip(cpu_before).map(|(after, before)| after - before);
    let mix_calls: usize = mix.values().map(|t| t.ok.len()).sum();

    println!(
        "  {:<10} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9}  errors",
        "rpc", "ok", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms", "ceiling"
    );
    let mut rows: Vec<(String, Tally, Duration)> = Vec::new();
    for (op, tally) in ceiling {
        rows.push((op, tally, ceiling_time));
    }
    for (op, tally) in mix {
        rows.push((op, tally, mix_time));
    }
    for (op, mut tally, time) in rows {
        tally.ok.sort_unstable();
        let rate = tally.ok.len() as f64 / time.as_secs_f64();
        let errors: Vec<String> = tally.errors.iter().map(|(c, n)| format!("{c}={n}")).collect();
        println!(
            "  {:<10} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.0}%  {}",
            op,
            tally.ok.len(),
            rate,
            percentile(&tally.ok, 0.50),
            percentile(&tally.ok, 0.90),
            percentile(&tally.ok, 0.99),
            tally.ok.last().map_or(0.0, |m| *m as f64 / 1_000.0),
            if ceiling_rate > 0.0 { 100.0 * rate / ceiling_rate } else { 0.0 },
            if errors.is_empty() { "-".to_string() } else { errors.join(" ") }
        );
    }
    if let Some(cpu) = cpu_used
        && mix_calls > 0
    {
        let whose = match cpu_pid {
            Some(pid) => format!("the server (process {pid}), background refits included"),
            None => "this process: server and load generator together".to_string(),
        };
        println!(
            "  CPU during the mix: {cpu:.2} s of {whose}; {:.0} µs per call over {mix_calls} calls",
            cpu * 1e6 / mix_calls as f64
        );
    }
    if let Some(rss) =
        own.as_ref().and_then(|_| crate::cmd::bench::calibration::rss_bytes(None)).map(|b| b as f64 / 1_048_576.0)
    {
        println!("  memory: {rss:.0} MB resident (server and load generator in one process)");
    }
    if let Some(pid) = options.server_pid {
        match crate::cmd::bench::calibration::rss_bytes(Some(pid)) {
            Some(bytes) => println!("  server memory: {:.0} MB resident (process {pid})", bytes as f64 / 1_048_576.0),
            None => println!("  server memory: process {pid} not found on this machine"),
        }
    }
    if let Some(server) = own {
        server.finish().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_bad_ones_are_named() {
        assert_eq!(parse_mix("submit=2, ranking=1").unwrap(), vec![("submit".into(), 2), ("ranking".into(), 1)]);
        assert!(parse_mix("submit").is_err());
        assert!(parse_mix("delete=1").is_err());
        assert!(parse_mix("submit=0").is_err());
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let spent = cpu_seconds(None).expect("/proc/self/stat is readable on Linux");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
        }
        let later = cpu_seconds(None).expect("readable again");
        assert!(later >= spent && later > 0.0, "{spent} then {later}");
    }

    #[test]
    fn percentiles_of_sorted_latencies() {
        let v: Vec<u64> = (1..=100).map(|n| n * 1_000).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}

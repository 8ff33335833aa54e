//! Command line and environment. Every setting has a flag and a `SCORECARD_*`
//! environment variable; secrets never appear in `Debug` output.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use scorecard::telemetry::LogFormat;

/// A value that must not be printed.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Debug, Parser)]
#[command(name = "scorecard", version, about = "Calibrated, comparable interview feedback over gRPC.")]
pub struct Cli {
    /// Log output format.
    #[arg(long, env = "SCORECARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC server, and the report pages and metrics over HTTP
    /// (migrates the database first).
    ///
    /// Example: scorecard serve --listen 127.0.0.1:50051 --http-listen 127.0.0.1:8080
    Serve(ServeArgs),
    /// Check the configuration `serve` would start with (database reachable,
    /// migrations current, keys loaded, audience set, listeners free) and say
    /// what is wrong and how to fix it; exits non-zero if `serve` would not start.
    ///
    /// Example: SCORECARD_DATABASE_URL=postgres://… scorecard doctor
    Doctor(ServeArgs),
    /// Apply database migrations and exit.
    ///
    /// Example: SCORECARD_DATABASE_URL=postgres://postgres@127.0.0.1/scorecard scorecard migrate
    Migrate(DatabaseArgs),
    /// Seal every stored self-identification again under the current key
    /// (after a rotation: the old key can then leave SCORECARD_SELF_ID_OLD_KEYS).
    ///
    /// Example: SCORECARD_SELF_ID_KEY=… SCORECARD_SELF_ID_OLD_KEYS=… scorecard self-id-rekey
    #[command(name = "self-id-rekey")]
    SelfIdRekey {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        keys: SelfIdKeyArgs,
    },
    /// Print a signed HS256 token for calling the API (development and scripts).
    ///
    /// Example: scorecard token --sub ana --org acme --role admin
    Token(TokenArgs),
    /// Serve a realistic demo organisation on a throw-away database, printing
    /// tokens and commands to try.
    ///
    /// Example: scorecard demo
    Demo {
        /// Address to serve gRPC on.
        #[arg(long, env = "SCORECARD_LISTEN", default_value = "127.0.0.1:50051")]
        listen: String,
        /// Address to serve the visual report on.
        #[arg(long, env = "SCORECARD_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
        http_listen: String,
        /// Instead of serving: seed the demo organisation into this database
        /// (migrating it first), print its jobs (`jobs/{id}<TAB>title`) and exit.
        #[arg(long, value_name = "DATABASE_URL")]
        seed_into: Option<String>,
    },
    /// Print a job's calibrated ranking from a running server.
    ///
    /// Example: SCORECARD_TOKEN=$(scorecard token --sub rita --org acme --role recruiter) scorecard ranking --job jobs/…
    Ranking {
        /// The job, `jobs/{id}`.
        #[arg(long)]
        job: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the next interviews that would settle the most undecided
    /// candidates of a job (against its hiring bar, or its shortlist line).
    ///
    /// Example: scorecard plan --job jobs/… --slots 10
    Plan {
        /// The job, `jobs/{id}`.
        #[arg(long)]
        job: String,
        /// Interviews to plan, 1..200.
        #[arg(long, default_value_t = 10)]
        slots: i32,
        /// The interviewers available (user ids); default everyone who has rated.
        #[arg(long, value_delimiter = ',')]
        interviewers: Vec<String>,
        /// Most interviews for one interviewer (0: twice the even share).
        #[arg(long, default_value_t = 0)]
        max_per_interviewer: i32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print rater reports from a running server.
    ///
    /// Example: scorecard raters --flagged
    Raters {
        /// Only raters with a flag to act on.
        #[arg(long)]
        flagged: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a job's panel reliability from a running server.
    ///
    /// Example: scorecard reliability --job jobs/…
    Reliability {
        /// The job, `jobs/{id}`.
        #[arg(long)]
        job: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Compliance reports from a running server (role `compliance`).
    ///
    /// Example: scorecard compliance impact --job jobs/…
    #[command(subcommand)]
    Compliance(ComplianceCommand),
    /// Run a benchmark and print its figures.
    ///
    /// Example: scorecard bench calibration --orgs 10
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print a shell completion script for this command line.
    ///
    /// Example: scorecard completions bash > /etc/bash_completion.d/scorecard
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Rater differentials (ListRaterDifferentials) against interviewers
    /// planted to score one group lower, on synthetic organisations with known
    /// truth; with --subjects, also the compliance reports' speed through the
    /// API on an imported organisation of that many subjects.
    ///
    /// Example: scorecard bench fairness --orgs 100
    /// Example: scorecard bench fairness --orgs 0 --subjects 50000
    Fairness {
        /// Synthetic organisations per scale and scenario (0: skip this part).
        #[arg(long, default_value_t = 100)]
        orgs: usize,
        /// Scales, as points (5: ratings 1..5; 4: 1..4).
        #[arg(long, value_delimiter = ',', default_value = "5,4", value_parser = clap::value_parser!(u8).range(2..=11))]
        points: Vec<u8>,
        /// Subjects of the organisation imported for the report timing (0: skip).
        #[arg(long, default_value_t = 0)]
        subjects: usize,
        /// Database of the server started for the timing; default a throw-away SQLite file.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Whether the decision numbers are honest, on synthetic organisations
    /// with known truth: the reliability table and Brier score of
    /// `p_above_bar` (against the raw mean's best monotone map), pairwise
    /// probabilities and tiers, and planned interviews against random ones.
    ///
    /// Example: scorecard bench decisions --orgs 100 --plan-orgs 20
    Decisions {
        /// Reference organisations per scale for the probability figures.
        #[arg(long, default_value_t = 100)]
        orgs: usize,
        /// Organisations per scale for the planning figures (0: skip).
        #[arg(long, default_value_t = 20)]
        plan_orgs: usize,
        /// Scales, as points (5: ratings 1..5; 4: 1..4).
        #[arg(long, value_delimiter = ',', default_value = "5,4", value_parser = clap::value_parser!(u8).range(2..=11))]
        points: Vec<u8>,
    },
    /// Calibration accuracy on synthetic organisations with known truth, fit
    /// time, incremental update time and memory.
    ///
    /// Example: scorecard bench calibration --orgs 20 --sizes 10000,100000
    Calibration {
        /// Replicate reference organisations for the accuracy figures. Each
        /// figure is an average over them; with 10 the coverage still moves by
        /// about ±0.01 from one set of seeds to the next, with 100 by ±0.003.
        #[arg(long, default_value_t = 100)]
        orgs: usize,
        /// Rating counts for the speed runs.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        sizes: Vec<usize>,
        /// Scales of the accuracy runs, as points (5: ratings 1..5; 4: 1..4).
        #[arg(long, value_delimiter = ',', default_value = "5,4", value_parser = clap::value_parser!(u8).range(2..=11))]
        points: Vec<u8>,
    },
    /// Throughput and latency per RPC (submit, ranking of a 1,000-candidate
    /// job, list) beside the health-check ceiling of the same server.
    ///
    /// Example: scorecard bench load --concurrency 32 --seconds 10
    /// Example: scorecard bench load --database-url postgres://postgres@127.0.0.1/test --mix submit=1
    Load {
        /// Load this server (`http://host:port`) instead of starting one here;
        /// needs --token. Its rate limit must allow the load.
        #[arg(long)]
        addr: Option<String>,
        /// Bearer token for --addr (an admin or integration of a test organisation).
        #[arg(long, env = "SCORECARD_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Database of the server started here; default a throw-away SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// HTTP/2 connections the callers share.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Concurrent callers.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds per phase (the health-check ceiling, then the mix).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Weights of the calls in the mix: submit, ranking, list.
        #[arg(long, default_value = "submit=1,ranking=1,list=1")]
        mix: String,
        /// Candidates of the job whose ranking is read.
        #[arg(long, default_value_t = 1_000)]
        candidates: usize,
        /// Interviews prepared for submissions (one scorecard each).
        #[arg(long, default_value_t = 40_000)]
        submit_pool: usize,
        /// Entries per GetRanking call: 1000 reads the whole ranking in one
        /// page; 50 is the API's default page (what a recruiter's first screen
        /// or an ATS's first page asks for).
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=1000))]
        ranking_page_size: u32,
        /// With --addr: the process id of the server on this machine, whose
        /// resident memory is printed after the run (the memory figure).
        #[arg(long, requires = "addr")]
        server_pid: Option<u32>,
    },
    /// Fits a CSV of ratings (`rater,subject,item,scorecard,score`) as the
    /// service fits an organisation and prints each subject's calibrated
    /// overall score (`bench/realdata/compare.py` compares it with others).
    ///
    /// Example: scorecard bench ratings --input instevalA.csv --scale 1,5
    Ratings {
        /// The CSV file, or `-` for standard input.
        #[arg(long)]
        input: String,
        /// The rating scale as `min,max`; default the smallest and largest score seen.
        #[arg(long, value_parser = parse_scale)]
        scale: Option<(f64, f64)>,
        /// Most sweeps of the fit (default: the service's).
        #[arg(long)]
        sweeps: Option<usize>,
        /// Convergence tolerance of the fit (default: the service's).
        #[arg(long)]
        tolerance: Option<f64>,
        /// Live reads: every N-th scorecard arrives after the fit, one by one
        /// through the service's live update, and the scores are read before
        /// any refit (5: a fifth of the data arrives live).
        #[arg(long, value_parser = clap::value_parser!(u32).range(2..))]
        live: Option<u32>,
    },
    /// Back-fill speed: imports a synthetic ATS history (jobs, candidates,
    /// interviews, scorecards) through ImportScorecards into a server of its own.
    ///
    /// Example: scorecard bench import --scorecards 100000
    /// Example: scorecard bench import --database-url postgres://postgres@127.0.0.1/test
    /// Example: scorecard bench import --scorecards 3333334 --raters 20000 --streams 4 --restart
    Import {
        /// Scorecards to import (each with its interview; four per candidate).
        #[arg(long, default_value_t = 100_000)]
        scorecards: usize,
        /// Database to import into; default a throw-away SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Concurrent streams for the interviews and their scorecards, as an
        /// ATS back-filling several jobs at once would open (the jobs and
        /// candidates go first, in one stream at a time).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
        streams: u32,
        /// Interviewers the scorecards are spread over (20,000 with 3,333,334
        /// scorecards is issue 21's organisation of 10,000,000 ratings).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        raters: u32,
        /// Then restart the server on the same database and time the restart
        /// to serving and GetRanking's latency (p50, p99): the stop writes the
        /// calibration snapshot, the start reads it back.
        #[arg(long)]
        restart: bool,
        /// With `--restart`: a second restart with calibration snapshots off,
        /// which reads every scorecard and fits afresh, timed the same way.
        #[arg(long, requires = "restart")]
        restart_without_snapshot: bool,
    },
}

/// `min,max` of a rating scale.
fn parse_scale(text: &str) -> Result<(f64, f64), String> {
    let (lo, hi) = text.split_once(',').ok_or("expected min,max")?;
    let parse = |v: &str| v.trim().parse::<f64>().map_err(|_| format!("{v} is not a number"));
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    if lo < hi { Ok((lo, hi)) } else { Err("min must be below max".into()) }
}

/// How the CLI reaches a server.
#[derive(Debug, Subcommand)]
pub enum ComplianceCommand {
    /// The adverse-impact report: rates and impact ratios per category, for
    /// a job, a rubric's jobs, or (with neither) the whole organisation.
    ///
    /// Example: scorecard compliance impact --job jobs/…
    Impact {
        /// The job, `jobs/{id}`.
        #[arg(long, conflicts_with = "rubric")]
        job: Option<String>,
        /// The rubric, `rubrics/{id}`: every job rated on it.
        #[arg(long)]
        rubric: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Rater differentials: how far each interviewer's ratings of a
    /// category's candidates sit from the panel's view, relative to the
    /// reference category, with a 90% interval.
    ///
    /// Example: scorecard compliance raters --grouping race-ethnicity --flagged
    Raters {
        /// The grouping compared.
        #[arg(long, value_enum, default_value_t = DifferentialGrouping::Sex)]
        grouping: DifferentialGrouping,
        /// Only interviewers with a flagged comparison.
        #[arg(long)]
        flagged: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The groupings rater differentials compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DifferentialGrouping {
    Sex,
    RaceEthnicity,
}

#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Server address: `host:port` (plain HTTP/2, as grpcurl takes it), `http://host:port`, or
    /// `https://host[:port]` (TLS, verified against the system's trust store).
    #[arg(long, env = "SCORECARD_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Bearer token (see `scorecard token`).
    #[arg(long, env = "SCORECARD_TOKEN", hide_env_values = true)]
    pub token: String,
    /// How to print: an aligned table for people (candidates by name), or
    /// JSON or CSV for scripts and spreadsheets (ids and names both).
    #[arg(long, value_enum, env = "SCORECARD_OUTPUT", default_value_t = Output::Table)]
    pub output: Output,
    /// Short for `--output json`.
    #[arg(long)]
    pub json: bool,
}

impl ClientArgs {
    /// The output form asked for (`--json` wins, as the shorter spelling of
    /// `--output json`).
    pub fn output(&self) -> Output {
        if self.json { Output::Json } else { self.output }
    }
}

/// The forms a read command prints in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args, Clone)]
pub struct DatabaseArgs {
    /// `sqlite://FILE` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "SCORECARD_DATABASE_URL", default_value = "sqlite://scorecard.db")]
    pub database_url: String,
    /// Most connections the server opens to the database.
    #[arg(long, env = "SCORECARD_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
}

#[derive(Debug, Args, Clone)]
pub struct AuthArgs {
    /// HS256 shared secret (at least 32 bytes). Without it and without public
    /// keys, `serve --dev` and `token` use a development secret generated into
    /// ./scorecard-dev.secret.
    #[arg(long, env = "SCORECARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// PEM public key or JWKS file for RS256 / ES256 / EdDSA tokens.
    #[arg(long, env = "SCORECARD_JWT_PUBLIC_KEYS")]
    pub jwt_public_keys: Option<PathBuf>,
    /// An identity provider's JWKS URL (Okta, Auth0, Keycloak, Entra ID):
    /// fetched at start, again when its Cache-Control lifetime runs out or a
    /// token names a new key id; the keys held are kept while it cannot be
    /// reached. `https://` (plain `http://` only to a loopback address).
    #[arg(long, env = "SCORECARD_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,
    /// Least seconds between JWKS fetches caused by tokens with an unknown key id.
    #[arg(long, env = "SCORECARD_JWT_JWKS_MIN_REFRESH_SECONDS", default_value_t = 30.0)]
    pub jwt_jwks_min_refresh_seconds: f64,
    /// Required `iss` claim, when set.
    #[arg(long, env = "SCORECARD_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "SCORECARD_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

/// The keys that seal candidates' self-identification at rest.
#[derive(Debug, Args, Clone)]
pub struct SelfIdKeyArgs {
    /// 32 random bytes, base64: seals candidates' self-identification at
    /// rest. Without it, SetSelfIdentification is refused.
    #[arg(long, env = "SCORECARD_SELF_ID_KEY", hide_env_values = true)]
    pub self_id_key: Option<Secret>,
    /// Earlier self-identification keys (comma-separated, base64): values
    /// sealed under them still open.
    #[arg(long, env = "SCORECARD_SELF_ID_OLD_KEYS", hide_env_values = true)]
    pub self_id_old_keys: Option<Secret>,
}

impl SelfIdKeyArgs {
    /// The self-identification sealing keys, if a current key is configured.
    pub fn keys(
        &self,
    ) -> Result<Option<std::sync::Arc<scorecard::auth::sealing::SealingKeys>>, scorecard::server::AppError> {
        let Some(current) = self.self_id_key.as_ref().map(|s| s.0.as_str()).filter(|k| !k.is_empty()) else {
            return Ok(None);
        };
        let old = self.self_id_old_keys.as_ref().map(|s| s.0.as_str()).unwrap_or_default();
        let keys =
            scorecard::auth::sealing::SealingKeys::new(current, old).map_err(scorecard::server::AppError::Config)?;
        Ok(Some(std::sync::Arc::new(keys)))
    }
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Development mode: without SCORECARD_JWT_SECRET or public keys, sign
    /// and verify tokens with a generated secret (./scorecard-dev.secret).
    /// Without it, `serve` refuses to start unless keys are configured.
    #[arg(long, env = "SCORECARD_DEV", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub dev: bool,
    /// Address the gRPC server listens on.
    #[arg(long, env = "SCORECARD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// Address of the HTTP listener (report pages, /metrics, /healthz); `off`
    /// to serve none.
    #[arg(long, env = "SCORECARD_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    pub http_listen: String,
    /// Mark the report's session cookie `Secure` (`__Host-` prefixed) even
    /// on a loopback listener, for a TLS proxy on the same host; on any other
    /// address it always is.
    #[arg(long, env = "SCORECARD_HTTP_SECURE_COOKIE", default_value_t = false, action = clap::ArgAction::Set)]
    pub http_secure_cookie: bool,
    /// When set, /metrics needs `Authorization: Bearer <this>` (Prometheus'
    /// `authorization` scrape setting).
    #[arg(long, env = "SCORECARD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    #[command(flatten)]
    pub self_id: SelfIdKeyArgs,
    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "SCORECARD_SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
    /// Write each organisation's calibration state to the database when the
    /// server stops, and read it back at start instead of reading every
    /// scorecard and fitting afresh (docs/performance.md).
    #[arg(long, env = "SCORECARD_CALIBRATION_SNAPSHOTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub calibration_snapshots: bool,
    /// Rater-flag thresholds as JSON, any subset of the fields in
    /// docs/calibration.md, e.g. '{"min_ratings":20,"severity":0.15}'.
    #[arg(long, env = "SCORECARD_CALIBRATION_SETTINGS")]
    pub calibration_settings: Option<String>,
    /// Let webhooks target private, loopback and link-local addresses and plain
    /// http (receivers on your own network; tests). Off: only public https.
    #[arg(long, env = "SCORECARD_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// Hours a failing webhook event is retried before it becomes a dead letter.
    #[arg(long, env = "SCORECARD_WEBHOOK_RETRY_HOURS", default_value_t = 24.0)]
    pub webhook_retry_hours: f64,
    /// First webhook retry delay in seconds; doubles per failure, at most an hour.
    #[arg(long, env = "SCORECARD_WEBHOOK_RETRY_BASE_SECONDS", default_value_t = 10.0)]
    pub webhook_retry_base_seconds: f64,
    /// Seconds between scans for interviews that became overdue (raising
    /// `interview.overdue`).
    #[arg(long, env = "SCORECARD_OVERDUE_SCAN_SECONDS", default_value_t = 60.0)]
    pub overdue_scan_seconds: f64,
    /// Requests per second one token (organisation and user) may make on
    /// average; beyond it, RESOURCE_EXHAUSTED with a retry delay.
    #[arg(long, env = "SCORECARD_RATE_LIMIT_PER_SECOND", default_value_t = 200.0)]
    pub rate_limit_per_second: f64,
    /// Requests one token may make in a burst.
    #[arg(long, env = "SCORECARD_RATE_LIMIT_BURST", default_value_t = 400.0)]
    pub rate_limit_burst: f64,
    /// Requests handled at once; beyond it, RESOURCE_EXHAUSTED at once.
    #[arg(long, env = "SCORECARD_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,
    /// Server streams (WatchEvents, WatchRanking) one token may hold open.
    #[arg(long, env = "SCORECARD_MAX_STREAMS_PER_CALLER", default_value_t = 16)]
    pub max_streams_per_caller: usize,
    /// Server streams open at once over all callers.
    #[arg(long, env = "SCORECARD_MAX_STREAMS", default_value_t = 1024)]
    pub max_streams: usize,
    /// Deadline of unary calls whose client sets none or a longer one.
    #[arg(long, env = "SCORECARD_DEFAULT_DEADLINE_SECONDS", default_value_t = 30.0)]
    pub default_deadline_seconds: f64,
    /// Seconds between checks of SCORECARD_JWT_PUBLIC_KEYS for rotated keys.
    #[arg(long, env = "SCORECARD_JWT_KEYS_RELOAD_SECONDS", default_value_t = 10.0)]
    pub jwt_keys_reload_seconds: f64,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
}

#[derive(Debug, Args, Clone)]
pub struct TokenArgs {
    /// User id (`sub`): an interviewer's id, or a service account's.
    #[arg(long)]
    pub sub: String,
    /// Organisation (tenant) id.
    #[arg(long)]
    pub org: String,
    /// Role; repeat for several: integration, interviewer, recruiter, admin.
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl_seconds: u64,
    #[command(flatten)]
    pub auth: AuthArgs,
}

impl ServeArgs {
    /// Everything `serve` needs besides the listener, store and keys.
    pub fn settings(&self) -> Result<scorecard::server::Settings, scorecard::server::AppError> {
        let seconds = |name: &str, value: f64| {
            if value.is_finite() && value > 0.0 && value < 1e9 {
                Ok(std::time::Duration::from_secs_f64(value))
            } else {
                Err(scorecard::server::AppError::Config(format!("{name} must be a positive number")))
            }
        };
        let webhooks = scorecard::webhooks::WebhookSettings {
            allow_private: self.webhook_allow_private,
            retry_base: seconds("SCORECARD_WEBHOOK_RETRY_BASE_SECONDS", self.webhook_retry_base_seconds)?,
            retry_window: seconds("SCORECARD_WEBHOOK_RETRY_HOURS", self.webhook_retry_hours * 3_600.0)?,
            ..Default::default()
        };
        let rate_ok = self.rate_limit_per_second.is_finite() && self.rate_limit_per_second > 0.0;
        let burst_ok = self.rate_limit_burst.is_finite() && self.rate_limit_burst >= 1.0;
        if !(rate_ok && burst_ok) {
            return Err(scorecard::server::AppError::Config(
                "SCORECARD_RATE_LIMIT_PER_SECOND must be positive and SCORECARD_RATE_LIMIT_BURST at least 1".into(),
            ));
        }
        Ok(scorecard::server::Settings {
            thresholds: self.calibration_thresholds()?,
            webhooks,
            overdue_scan: seconds("SCORECARD_OVERDUE_SCAN_SECONDS", self.overdue_scan_seconds)?,
            guard: scorecard::server::guard::GuardSettings {
                rate_per_second: self.rate_limit_per_second,
                burst: self.rate_limit_burst,
                max_concurrent: self.max_concurrent_requests.max(1),
                default_deadline: seconds("SCORECARD_DEFAULT_DEADLINE_SECONDS", self.default_deadline_seconds)?,
            },
            streams: scorecard::api::streams::StreamSettings {
                per_caller: self.max_streams_per_caller.max(1),
                total: self.max_streams.max(1),
            },
            key_reload: seconds("SCORECARD_JWT_KEYS_RELOAD_SECONDS", self.jwt_keys_reload_seconds)?,
            web: scorecard::server::web::WebSettings {
                secure_cookie: self.http_secure_cookie,
                metrics_token: self.metrics_token.as_ref().map(|s| s.0.clone()).filter(|t| !t.is_empty()),
            },
            self_id_keys: self.self_id.keys()?,
            shutdown_grace: Some(std::time::Duration::from_secs(self.shutdown_grace_seconds)),
            calibration_snapshots: self.calibration_snapshots,
        })
    }

    /// The rater-flag thresholds: defaults, overridden by the JSON setting.
    pub fn calibration_thresholds(
        &self,
    ) -> Result<scorecard::calibration::raters::Thresholds, scorecard::server::AppError> {
        match &self.calibration_settings {
            None => Ok(Default::default()),
            Some(json) => serde_json::from_str(json).map_err(|e| {
                scorecard::server::AppError::Config(format!("SCORECARD_CALIBRATION_SETTINGS is not valid: {e}"))
            }),
        }
    }
}

/// Where the generated development secret lives.
pub const DEV_SECRET_FILE: &str = "scorecard-dev.secret";

impl AuthArgs {
    /// The HS256 secret: configured, or (when no key at all is configured) the
    /// development secret file, created on first use with owner-only permissions.
    pub fn secret_or_dev(&self) -> std::io::Result<Option<String>> {
        if let Some(Secret(s)) = &self.jwt_secret {
            return Ok(Some(s.clone()));
        }
        if self.has_public_keys() {
            return Ok(None);
        }
        read_or_create_dev_secret().map(Some)
    }
}

impl AuthArgs {
    /// Whether public keys are configured (a file or a JWKS URL).
    pub fn has_public_keys(&self) -> bool {
        self.jwt_public_keys.is_some() || self.jwt_jwks_url.as_deref().is_some_and(|u| !u.is_empty())
    }

    /// The least time between JWKS fetches that unknown key ids cause.
    pub fn jwks_min_refresh(&self) -> Result<std::time::Duration, scorecard::server::AppError> {
        let s = self.jwt_jwks_min_refresh_seconds;
        if s.is_finite() && (0.0..1e6).contains(&s) {
            Ok(std::time::Duration::from_secs_f64(s))
        } else {
            Err(scorecard::server::AppError::Config(
                "SCORECARD_JWT_JWKS_MIN_REFRESH_SECONDS must be a number of seconds, 0 or more".into(),
            ))
        }
    }
}

fn read_or_create_dev_secret() -> std::io::Result<String> {
    use std::io::Write;
    if let Ok(existing) = std::fs::read_to_string(DEV_SECRET_FILE) {
        return Ok(existing.trim().to_string());
    }
    let bytes: [u8; 32] = rand::random();
    let secret = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(DEV_SECRET_FILE)?;
    file.write_all(secret.as_bytes())?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let args = AuthArgs {
            jwt_secret: Some(Secret("super-secret-value".into())),
            jwt_public_keys: None,
            jwt_jwks_url: None,
            jwt_jwks_min_refresh_seconds: 30.0,
            jwt_issuer: None,
            jwt_audience: None,
        };
        let shown = format!("{args:?}");
        assert!(!shown.contains("super-secret-value"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn cli_parses_every_command() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::parse_from(["scorecard", "token", "--sub", "a", "--org", "o", "--role", "admin"]);
        assert!(matches!(cli.command, Command::Token(t) if t.roles == ["admin"]));
    }
}

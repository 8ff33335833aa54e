//! The binary's commands: `serve` and `migrate` run the service library;
//! `doctor` checks their configuration; `token` mints development tokens; `ranking`, `raters` and `reliability` are
//! gRPC clients; `demo` serves a seeded organisation; `bench …` measures. None
//! of this is compiled into the library, so a library user never builds the
//! load generator.

pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod synthetic;

use std::sync::Arc;
use std::time::Duration;

use scorecard::auth::{Claims, Verifier, mint_token};
use scorecard::server::{AppError, open_store, serve, shutdown_signal};
use tokio::net::TcpListener;

use config::{AuthArgs, Cli, Command, TokenArgs};

/// Builds the token verifier from the auth settings (with the development
/// secret when nothing is configured); fetches the JWKS when it comes from a URL.
async fn verifier(auth: &AuthArgs, dev: bool) -> Result<Verifier, AppError> {
    let jwks_url = auth.jwt_jwks_url.as_deref().filter(|u| !u.is_empty());
    if auth.jwt_public_keys.is_some() && jwks_url.is_some() {
        return Err(AppError::Config(scorecard::auth::KeyError::TwoKeySources.to_string()));
    }
    if auth.has_public_keys() && auth.jwt_audience.is_none() {
        return Err(AppError::Config(
            "SCORECARD_JWT_PUBLIC_KEYS and SCORECARD_JWT_JWKS_URL need SCORECARD_JWT_AUDIENCE: without an audience, \
             any token of the same identity provider that carries `org` and `roles` would be accepted. Set it to \
             the `aud` your identity provider writes into scorecard's tokens."
                .into(),
        ));
    }
    if auth.jwt_secret.is_none() && !auth.has_public_keys() && !dev {
        return Err(AppError::Config(
            "no token keys configured: set SCORECARD_JWT_SECRET (HS256), or SCORECARD_JWT_PUBLIC_KEYS or \
             SCORECARD_JWT_JWKS_URL with SCORECARD_JWT_AUDIENCE, or pass --dev to run with a generated development \
             secret (./scorecard-dev.secret; mint tokens with `scorecard token`)"
                .into(),
        ));
    }
    let secret = auth.secret_or_dev().map_err(|e| AppError::Config(format!("development secret: {e}")))?;
    if auth.jwt_secret.is_none() && !auth.has_public_keys() {
        tracing::warn!(
            file = config::DEV_SECRET_FILE,
            "no SCORECARD_JWT_SECRET or public keys: using a generated development secret; \
             mint tokens with `scorecard token`. Configure real keys in production."
        );
    }
    let (issuer, audience) = (auth.jwt_issuer.clone(), auth.jwt_audience.clone());
    let built = match jwks_url {
        Some(url) => Verifier::with_jwks_url(secret.as_deref(), url, issuer, audience, auth.jwks_min_refresh()?).await,
        None => Verifier::new(secret.as_deref(), auth.jwt_public_keys.as_deref(), issuer, audience),
    };
    built.map_err(|e| AppError::Config(e.to_string()))
}

/// A token signed with the configured (or development) secret.
fn token(args: &TokenArgs) -> Result<String, AppError> {
    let secret = args
        .auth
        .secret_or_dev()
        .map_err(|e| AppError::Config(format!("development secret: {e}")))?
        .ok_or_else(|| AppError::Config("minting tokens needs SCORECARD_JWT_SECRET".into()))?;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: args.sub.clone(),
        org: args.org.clone(),
        roles: args.roles.clone(),
        exp: now + args.ttl_seconds,
        nbf: None,
        iat: Some(now),
        iss: args.auth.jwt_issuer.clone(),
        aud: args.auth.jwt_audience.clone(),
    };
    for role in &claims.roles {
        if scorecard::domain::Role::parse(role).is_none() {
            return Err(AppError::Config(format!(
                "unknown role `{role}`: use integration, interviewer, recruiter or admin"
            )));
        }
    }
    mint_token(&secret, &claims).map_err(|e| AppError::Config(e.to_string()))
}

/// Runs one command of the binary.
pub async fn run(cli: Cli) -> Result<(), AppError> {
    match cli.command {
        Command::Serve(args) => {
            let verifier = Arc::new(verifier(&args.auth, args.dev).await?);
            let store = open_store(&args.database.database_url, args.database.db_max_connections).await?;
            let listener = TcpListener::bind(&args.listen)
                .await
                .map_err(|e| AppError::Config(format!("cannot listen on {}: {e}", args.listen)))?;
            let http = if args.http_listen.eq_ignore_ascii_case("off") {
                None
            } else {
                let http = TcpListener::bind(&args.http_listen)
                    .await
                    .map_err(|e| AppError::Config(format!("cannot listen on {}: {e}", args.http_listen)))?;
                let addr = http.local_addr().map_err(|e| AppError::Server(e.to_string()))?;
                tracing::info!(%addr, "serving report pages, /metrics and /healthz over HTTP");
                Some(http)
            };
            tracing::info!(addr = %args.listen, database = store.kind(), "scorecard serving gRPC");
            // Stop accepting on the signal; in-flight requests get the grace
            // period (`serve` closes what is still open after it), then the
            // calibration snapshots are written.
            let settings = args.settings()?;
            serve(listener, http, store.clone(), verifier, settings, shutdown_signal()).await?;
            store.close().await;
            Ok(())
        }
        Command::SelfIdRekey { db, keys } => {
            let keys = keys.keys()?.ok_or_else(|| {
                scorecard::server::AppError::Config("self-id-rekey needs SCORECARD_SELF_ID_KEY (the new key)".into())
            })?;
            let store = open_store(&db.database_url, db.db_max_connections).await?;
            let (resealed, unopened) = scorecard::api::reseal_self_identifications(&store, &keys).await?;
            tracing::info!(
                resealed,
                unopened,
                key = keys.current_id(),
                "self-identifications sealed under the current key"
            );
            store.close().await;
            if unopened > 0 {
                return Err(scorecard::server::AppError::Config(format!(
                    "{unopened} self-identifications are sealed under a key that is neither SCORECARD_SELF_ID_KEY \
                     nor in SCORECARD_SELF_ID_OLD_KEYS; they were left as they are"
                )));
            }
            Ok(())
        }
        Command::Completions { shell } => {
            let mut command = <config::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "scorecard", &mut std::io::stdout());
            Ok(())
        }
        Command::Doctor(args) => {
            let (text, starts) = doctor::report(&doctor::check(&args).await);
            print!("{text}");
            if starts { Ok(()) } else { Err(AppError::Config("the configuration has problems (see above)".into())) }
        }
        Command::Migrate(db) => {
            let store = open_store(&db.database_url, db.db_max_connections).await?;
            tracing::info!(database = store.kind(), "migrations applied");
            store.close().await;
            Ok(())
        }
        Command::Bench(config::BenchCommand::Calibration { orgs, sizes, points }) => {
            bench::calibration::run(orgs, &sizes, &points, &scorecard::calibration::raters::Thresholds::default());
            Ok(())
        }
        Command::Bench(config::BenchCommand::Decisions { orgs, plan_orgs, points }) => {
            bench::decisions::run(orgs, plan_orgs, &points);
            Ok(())
        }
        Command::Bench(config::BenchCommand::Fairness { orgs, points, subjects, database_url }) => {
            if orgs > 0 {
                bench::fairness::accuracy(orgs, &points, &scorecard::calibration::raters::Thresholds::default());
            }
            if subjects > 0 {
                bench::fairness::report_speed(subjects, database_url).await?;
            }
            Ok(())
        }
        Command::Bench(config::BenchCommand::Load {
            addr,
            token,
            database_url,
            connections,
            concurrency,
            seconds,
            mix,
            candidates,
            submit_pool,
            ranking_page_size,
            server_pid,
        }) => {
            let mix = bench::load::parse_mix(&mix).map_err(AppError::Config)?;
            if !(seconds.is_finite() && seconds > 0.0) {
                return Err(AppError::Config("--seconds must be positive".into()));
            }
            bench::load::run(bench::load::LoadOptions {
                addr,
                token,
                database_url,
                connections,
                concurrency: concurrency.max(1),
                duration: Duration::from_secs_f64(seconds),
                mix,
                candidates,
                submit_pool,
                ranking_page_size: ranking_page_size as i32,
                server_pid,
            })
            .await
        }
        Command::Bench(config::BenchCommand::Ratings { input, scale, sweeps, tolerance, live }) => {
            let sweeps = sweeps.unwrap_or(scorecard::calibrator::FIT_SWEEPS);
            let tolerance = tolerance.unwrap_or(scorecard::calibrator::FIT_TOLERANCE);
            bench::ratings::run(&input, scale, sweeps, tolerance, live).map_err(AppError::Config)
        }
        Command::Bench(config::BenchCommand::Import {
            scorecards,
            database_url,
            streams,
            raters,
            restart,
            restart_without_snapshot,
        }) => {
            let restarts = match (restart, restart_without_snapshot) {
                (false, _) => &[][..],
                (true, false) => &[true][..],
                (true, true) => &[true, false][..],
            };
            bench::import::run(scorecards, raters as usize, database_url, streams as usize, restarts).await
        }
        Command::Demo { seed_into: Some(database_url), .. } => {
            let store = open_store(&database_url, 2).await?;
            // Self-identification only when a key to seal it is configured.
            let keys = match std::env::var("SCORECARD_SELF_ID_KEY").ok().filter(|k| !k.is_empty()) {
                Some(key) => Some(scorecard::auth::sealing::SealingKeys::new(&key, "").map_err(AppError::Config)?),
                None => None,
            };
            let jobs = demo::seed(&store, keys.as_ref()).await;
            store.close().await;
            for (name, title) in jobs? {
                println!("{name}\t{title}");
            }
            Ok(())
        }
        Command::Demo { listen, http_listen, seed_into: None } => demo::run(&listen, &http_listen).await,
        Command::Ranking { job, client } => {
            print!("{}", cli::ranking(&client, &job).await?);
            Ok(())
        }
        Command::Plan { job, slots, interviewers, max_per_interviewer, client } => {
            print!("{}", cli::plan(&client, &job, slots, &interviewers, max_per_interviewer).await?);
            Ok(())
        }
        Command::Raters { flagged, client } => {
            print!("{}", cli::raters(&client, flagged).await?);
            Ok(())
        }
        Command::Compliance(config::ComplianceCommand::Impact { job, rubric, client }) => {
            let (job, rubric) = (job.unwrap_or_default(), rubric.unwrap_or_default());
            print!("{}", cli::impact(&client, &job, &rubric).await?);
            Ok(())
        }
        Command::Compliance(config::ComplianceCommand::Raters { grouping, flagged, client }) => {
            let grouping = match grouping {
                config::DifferentialGrouping::Sex => scorecard::proto::Grouping::Sex,
                config::DifferentialGrouping::RaceEthnicity => scorecard::proto::Grouping::RaceEthnicity,
            };
            print!("{}", cli::differentials(&client, grouping, flagged).await?);
            Ok(())
        }
        Command::Reliability { job, client } => {
            print!("{}", cli::reliability(&client, &job).await?);
            Ok(())
        }
        Command::Token(args) => {
            println!("{}", token(&args)?);
            Ok(())
        }
    }
}

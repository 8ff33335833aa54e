//! The `scorecard` binary: parse configuration, start logging, run the command.
//! The commands live in `cmd/`, outside the service library.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, not glibc's malloc: the SQLite driver builds each row on its
/// connection's thread and the runtime frees it on another, which glibc pays
/// for in arena locks and consolidation (a tenth of a submission's CPU in a
/// profile). Measured A/B: 10% less server CPU per durable submission, 10–19%
/// more calls in the mixed load; 20 MB more resident at rest and 45–100 MB
/// more under load (docs/performance.md, "The allocator"). SQLite's own allocations stay on
/// glibc's heap, which `memory::release_free_memory` trims.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cmd::config::Cli::parse();
    let telemetry = scorecard::telemetry::init(cli.log_format);
    let code = match cmd::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("scorecard: {e}");
            ExitCode::FAILURE
        }
    };
    // The exporter's own thread sends what is queued; never from inside the runtime.
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.ok();
    code
}

//! The `scorecard` binary: parse configuration, start logging, run the command.
//! The commands live in `cmd/`, outside the service library.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

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

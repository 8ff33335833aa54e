//! The `scorecard` binary: parse configuration, start logging, run the command.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = scorecard::config::Cli::parse();
    scorecard::telemetry::init(cli.log_format);
    match scorecard::app::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("scorecard: {e}");
            ExitCode::FAILURE
        }
    }
}

//! scorecard: calibrated, comparable interview feedback over gRPC.

/// Generated gRPC types and services of `scorecard.v1`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("scorecard.v1");
    /// Encoded descriptors of every proto file, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("scorecard_descriptor");
}

/// The gRPC services: validate, authorise, call the store, convert.
pub mod api;
/// The server: router, listeners, graceful shutdown.
pub mod app;
/// The audit log: one row per authenticated call, written in batches.
pub mod audit;
/// JWT verification and the authenticated caller.
pub mod auth;
/// `scorecard bench …`: benchmarks that print their figures.
pub mod bench;
/// `scorecard bench import`: bulk back-fill speed through ImportScorecards.
pub mod bench_import;
/// `scorecard bench load`: a gRPC load generator with a transport ceiling.
pub mod bench_load;
/// The calibration engine: pure statistics.
pub mod calibration;
/// Per-organisation calibration state: loaded, updated, cached.
pub mod calibrator;
/// The recruiter CLI: ranking, raters, reliability tables from a running server.
pub mod cli;
/// Configuration from flags and environment.
pub mod config;
/// `scorecard demo`: a seeded organisation to explore.
pub mod demo;
/// Hiring rules and types.
pub mod domain;
/// The one error type and its mapping to gRPC status codes.
pub mod error;
/// Overload protection: per-token rate limit, concurrency limit, deadlines.
pub mod guard;
/// Returning freed memory to the operating system after loads and refits.
pub mod memory;
/// Prometheus metrics served at `/metrics`.
pub mod metrics;
/// Persistence on SQLite or PostgreSQL.
pub mod store;
/// Logging set-up.
pub mod telemetry;
/// The HTTP listener: visual report pages, `/metrics`, `/healthz`.
pub mod web;
/// Webhook delivery: signed, ordered, retried, SSRF-guarded.
pub mod webhooks;

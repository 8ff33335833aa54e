//! scorecard: calibrated, comparable interview feedback over gRPC.
//!
//! The library is the service; the `scorecard` binary (`src/main.rs` and
//! `src/cmd/`) adds the command line, the demo and the benchmarks on top of it.
//! Modules depend one way, top to bottom (docs/architecture.md,
//! `scripts/check-layers`):
//!
//! - `server`: serve, the HTTP listener, the auth, guard and audit layers
//! - `api`: one file per gRPC service, proto <-> domain
//! - `calibrator`, `store`, `webhooks`, `auth`: state, persistence, delivery, callers
//! - `calibration`, `domain`: pure numbers and rules
//! - `error`, `metrics`, `memory`, `telemetry`, `pauses`, `proto`: leaves every layer may use

// Lets files shared with the binary's tools (the synthetic organisations the
// engine's tests borrow) name this crate `scorecard` from either side.
extern crate self as scorecard;

/// Generated gRPC types and services of `scorecard.v1`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("scorecard.v1");
    /// Encoded descriptors of every proto file, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("scorecard_descriptor");
}

/// The server: router, listeners, the auth, guard and audit layers, graceful shutdown.
pub mod server;

/// The gRPC services: validate, authorise, call the store, convert.
pub mod api;

/// JWT verification and the authenticated caller.
pub mod auth;
/// Per-organisation calibration state: loaded, updated, refitted, published.
pub mod calibrator;
/// Persistence on SQLite or PostgreSQL.
pub mod store;
/// Webhook delivery: signed, ordered, retried, SSRF-guarded.
pub mod webhooks;

/// The calibration engine: pure statistics.
pub mod calibration;
/// Hiring rules and types, resource names, time and ids.
pub mod domain;

/// The one error type and its mapping to gRPC status codes.
pub mod error;
/// Returning freed memory to the operating system after loads and refits.
pub mod memory;
/// Prometheus metrics: the registry every layer records into.
pub mod metrics;
/// Named pause points that tests arm to reproduce races.
pub mod pauses;
/// Logging set-up.
pub mod telemetry;

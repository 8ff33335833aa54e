//! `scorecard bench …`: benchmarks that print their figures.
//!
//! - [`calibration`]: accuracy and speed of the engine on synthetic
//!   organisations with known truth.
//! - [`import`]: bulk back-fill speed through `ImportScorecards`.
//! - [`load`]: a gRPC load generator against a health-check ceiling.

pub mod calibration;
pub mod import;
pub mod load;

//! `scorecard bench …`: benchmarks that print their figures.
//!
//! - [`calibration`]: accuracy and speed of the engine on synthetic
//!   organisations with known truth.
//! - [`import`]: bulk back-fill speed through `ImportScorecards`.
//! - [`load`]: a gRPC load generator against a health-check ceiling.
//! - [`ratings`]: the model fitted to a file of real ratings, for comparisons.

pub mod calibration;
pub mod import;
pub mod load;
pub mod ratings;

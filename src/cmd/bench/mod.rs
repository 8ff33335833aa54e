//! `scorecard bench …`: benchmarks that print their figures.
//!
//! - [`calibration`]: accuracy and speed of the engine on synthetic
//!   organisations with known truth.
//! - [`decisions`]: whether `p_above_bar`, pairwise probabilities and tiers
//!   are calibrated, and the interview planner against random interviews.
//! - [`fairness`]: rater differentials against planted bias, and the
//!   compliance reports' speed through the API.
//! - [`import`]: bulk back-fill speed through `ImportScorecards`.
//! - [`load`]: a gRPC load generator against a health-check ceiling.
//! - [`ratings`]: the model fitted to a file of real ratings, for comparisons.

pub mod calibration;
pub mod decisions;
pub mod fairness;
pub mod import;
pub mod load;
pub mod ratings;

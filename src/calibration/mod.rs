//! The statistics engine: calibrated scores with intervals, rater diagnostics,
//! and inter-rater reliability. Pure: no I/O, no async, no clocks; the same
//! input always gives the same output.

pub mod model;
pub mod raters;
pub mod reliability;
pub mod scores;
/// Synthetic organisations with known truth live with the tools
/// (`src/cmd/synthetic.rs`); the engine's own tests borrow the same file.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../cmd/synthetic.rs"]
pub(crate) mod synthetic;

/// z such that a standard normal has 90% of its mass in (−z, z).
pub const Z90: f64 = 1.644_853_626_951_472_2;

//! Hiring rules and types: what a rubric, job, candidate, interview and scorecard
//! are, and what makes one valid. No gRPC and no SQL below this line.

pub mod model;
pub mod names;
pub mod templates;
pub mod validate;

pub use model::*;

//! Hiring rules and types: what a rubric, job, candidate, interview and scorecard
//! are, and what makes one valid; time and ids. No gRPC and no SQL below this line.

pub mod ids;
pub mod impact;
pub mod model;
pub mod names;
pub mod templates;
pub mod time;
pub mod validate;

pub use ids::{CandidateId, UserId};
pub use model::*;
pub use time::{Micros, new_id, now_micros};

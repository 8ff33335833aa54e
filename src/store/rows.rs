//! Row models: how rows look coming out of either database, and their
//! conversion into domain types.

use sqlx::FromRow;

use super::corrupt;
use crate::domain::{Candidate, Interview, Job, Rubric};
use crate::error::Error;

#[derive(FromRow)]
pub(super) struct RubricRow {
    id: String,
    revision: i64,
    content: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<RubricRow> for Rubric {
    type Error = Error;
    fn try_from(r: RubricRow) -> Result<Self, Error> {
        Ok(Rubric {
            content: serde_json::from_str(&r.content).map_err(|e| corrupt("rubric", e))?,
            id: r.id,
            revision: r.revision,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(FromRow)]
pub(super) struct JobRow {
    id: String,
    title: String,
    external_id: String,
    rubric_id: String,
    rubric_revision: i64,
    created_at: i64,
    updated_at: i64,
    hiring_bar: Option<f64>,
}

impl From<JobRow> for Job {
    fn from(r: JobRow) -> Self {
        Job {
            id: r.id,
            title: r.title,
            external_id: r.external_id,
            rubric_id: r.rubric_id,
            rubric_revision: r.rubric_revision,
            created_at: r.created_at,
            updated_at: r.updated_at,
            hiring_bar: r.hiring_bar,
        }
    }
}

#[derive(FromRow)]
pub(super) struct CandidateRow {
    id: String,
    external_id: String,
    display_name: String,
    email: String,
    erased_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<CandidateRow> for Candidate {
    fn from(r: CandidateRow) -> Self {
        Candidate {
            id: r.id,
            external_id: r.external_id,
            display_name: r.display_name,
            email: r.email,
            erased_at: r.erased_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct InterviewRow {
    id: String,
    job_id: String,
    candidate_id: String,
    interviewer: String,
    focus_competencies: String,
    scheduled_at: i64,
    scorecard_id: Option<String>,
    external_id: String,
    created_at: i64,
    updated_at: i64,
}

/// An interview with its candidate's erasure state (see
/// `Store::interview_for_submission`).
#[derive(FromRow)]
pub(super) struct SubmissionInterviewRow {
    #[sqlx(flatten)]
    pub interview: InterviewRow,
    pub candidate_erased: bool,
}

impl TryFrom<InterviewRow> for Interview {
    type Error = Error;
    fn try_from(r: InterviewRow) -> Result<Self, Error> {
        Ok(Interview {
            focus_competencies: serde_json::from_str(&r.focus_competencies).map_err(|e| corrupt("interview", e))?,
            id: r.id,
            job_id: r.job_id,
            candidate_id: r.candidate_id,
            interviewer: r.interviewer,
            scheduled_at: r.scheduled_at,
            scorecard_id: r.scorecard_id,
            external_id: r.external_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

//! The domain's data types. Times are microseconds since the Unix epoch (UTC),
//! see [`super::time`].

use super::time::Micros;

use serde::{Deserialize, Serialize};

/// The kinds of caller (the JWT `roles` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Integration,
    Interviewer,
    Recruiter,
    Admin,
    /// Reads adverse-impact reports, and nothing else.
    Compliance,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Integration, Role::Interviewer, Role::Recruiter, Role::Admin, Role::Compliance];
    /// Everyone who works on hiring: what "every role" means for the hiring
    /// RPCs. `compliance` reads aggregate reports only, nothing about a person.
    pub const HIRING_TEAM: [Role; 4] = [Role::Integration, Role::Interviewer, Role::Recruiter, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Integration => "integration",
            Role::Interviewer => "interviewer",
            Role::Recruiter => "recruiter",
            Role::Admin => "admin",
            Role::Compliance => "compliance",
        }
    }

    pub fn parse(word: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == word)
    }
}

/// An ordinal scale `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scale {
    pub min: i32,
    pub max: i32,
}

impl Scale {
    pub fn contains(&self, score: i32) -> bool {
        (self.min..=self.max).contains(&score)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    pub key: String,
    pub title: String,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    pub score: i32,
    pub label: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Competency {
    pub key: String,
    pub title: String,
    pub dimension_key: String,
    pub weight: f64,
    pub description: String,
    pub anchors: Vec<Anchor>,
}

/// What one rubric revision says; stored as a whole and never changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RubricContent {
    pub title: String,
    pub scale: Scale,
    pub dimensions: Vec<Dimension>,
    pub competencies: Vec<Competency>,
}

impl RubricContent {
    pub fn competency(&self, key: &str) -> Option<&Competency> {
        self.competencies.iter().find(|c| c.key == key)
    }
}

/// One revision of a rubric.
#[derive(Debug, Clone, PartialEq)]
pub struct Rubric {
    pub id: String,
    pub revision: i64,
    pub content: RubricContent,
    pub created_at: Micros,
    /// When this revision was written.
    pub updated_at: Micros,
}

impl Rubric {
    /// Opaque version tag of this revision: changes whenever a new revision is
    /// written, so a reviser holding an old one is refused.
    pub fn etag(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}:{}:{}", self.id, self.revision, self.updated_at));
        format!("r{}-{}", self.revision, &hex::encode(digest)[..16])
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub title: String,
    pub external_id: String,
    pub rubric_id: String,
    pub rubric_revision: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    /// On the rubric's scale; `None`: no bar.
    pub hiring_bar: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub external_id: String,
    pub display_name: String,
    pub email: String,
    /// Set once personal data was erased.
    pub erased_at: Option<Micros>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interview {
    pub id: String,
    pub job_id: String,
    pub candidate_id: String,
    pub interviewer: String,
    pub focus_competencies: Vec<String>,
    pub scheduled_at: Micros,
    /// The submitted scorecard's id, if any (the interview's state follows from it).
    pub scorecard_id: Option<String>,
    /// The ATS's id; '' when none was given.
    pub external_id: String,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recommendation {
    StrongNo,
    No,
    Yes,
    StrongYes,
}

impl Recommendation {
    /// Stable storage code; never renumber.
    pub fn code(self) -> i64 {
        match self {
            Recommendation::StrongNo => 1,
            Recommendation::No => 2,
            Recommendation::Yes => 3,
            Recommendation::StrongYes => 4,
        }
    }
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Recommendation::StrongNo),
            2 => Some(Recommendation::No),
            3 => Some(Recommendation::Yes),
            4 => Some(Recommendation::StrongYes),
            _ => None,
        }
    }
}

/// What was decided about a candidate for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Advanced,
    Rejected,
    Offered,
    Hired,
    Withdrawn,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Advanced, Outcome::Rejected, Outcome::Offered, Outcome::Hired, Outcome::Withdrawn];

    /// Stable storage word (and the `decisions_outcome_check` constraint's); never rename.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Advanced => "advanced",
            Outcome::Rejected => "rejected",
            Outcome::Offered => "offered",
            Outcome::Hired => "hired",
            Outcome::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == word)
    }

    /// Whether the outcome selects the candidate: the selection rate of an
    /// adverse-impact report counts ADVANCED, OFFERED and HIRED.
    pub fn selects(self) -> bool {
        matches!(self, Outcome::Advanced | Outcome::Offered | Outcome::Hired)
    }
}

/// A hiring decision. Every one is kept; the latest per (job, candidate) counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: String,
    pub job_id: String,
    pub candidate_id: String,
    pub outcome: Outcome,
    /// Free text: personal data, blanked by the candidate's erasure.
    pub reason: String,
    pub decided_by: String,
    pub decided_at: Micros,
    /// The ATS's id; '' when none was given.
    pub external_id: String,
    pub created_at: Micros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    pub competency: String,
    pub score: i32,
    pub evidence: String,
}

/// What an interviewer says in one scorecard revision.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorecardContent {
    pub ratings: Vec<Rating>,
    pub recommendation: Recommendation,
    pub summary: String,
}

/// One revision of a scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorecard {
    pub id: String,
    pub interview_id: String,
    pub job_id: String,
    pub candidate_id: String,
    pub interviewer: String,
    pub revision: i64,
    pub content: ScorecardContent,
    /// Why this revision was written; empty on revision 1.
    pub amend_reason: String,
    /// User id of whoever wrote this revision.
    pub author: String,
    pub submitted_at: Micros,
    pub updated_at: Micros,
}

//! Conversions between proto messages and domain types.

use prost_types::Timestamp;

use crate::domain::names::Collection;
use crate::domain::validate::{self, limits};
use crate::domain::{
    Anchor, Candidate, Competency, Decision, Dimension, Interview, Job, Micros, Outcome, Rating, Recommendation,
    Rubric, RubricContent, Scale, Scorecard,
};
use crate::error::Violations;
use crate::proto;

/// The instant as a proto field (always set).
pub fn timestamp(micros: Micros) -> Option<Timestamp> {
    Some(crate::domain::time::timestamp(micros))
}

/// Microseconds of a timestamp, or `None` if it is not a valid instant between
/// years 1 and 9999 (the range of `google.protobuf.Timestamp`).
/// A time window's `[start, end)` from optional `start_time` and `end_time`
/// fields (unset: unbounded), each bad one recorded under its name.
pub fn time_window(
    v: &mut crate::error::Violations,
    start: Option<&Timestamp>,
    end: Option<&Timestamp>,
) -> (Micros, Micros) {
    let mut instant = |field: &str, ts: Option<&Timestamp>, unset: Micros| match ts {
        None => unset,
        Some(ts) => micros(ts).unwrap_or_else(|| {
            v.add(field, "is not a valid timestamp");
            unset
        }),
    };
    (instant("start_time", start, i64::MIN), instant("end_time", end, i64::MAX))
}

pub fn micros(ts: &Timestamp) -> Option<Micros> {
    const MIN_SECONDS: i64 = -62_135_596_800;
    const MAX_SECONDS: i64 = 253_402_300_799;
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) || !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    Some(ts.seconds * 1_000_000 + i64::from(ts.nanos) / 1_000)
}

impl From<proto::Rubric> for RubricContent {
    fn from(r: proto::Rubric) -> Self {
        let scale = r.scale.map(|s| Scale { min: s.min, max: s.max }).unwrap_or(Scale { min: 0, max: 0 });
        RubricContent {
            title: r.title,
            scale,
            dimensions: r
                .dimensions
                .into_iter()
                .map(|d| Dimension { key: d.key, title: d.title, weight: d.weight })
                .collect(),
            competencies: r
                .competencies
                .into_iter()
                .map(|c| Competency {
                    key: c.key,
                    title: c.title,
                    dimension_key: c.dimension_key,
                    weight: c.weight,
                    description: c.description,
                    anchors: c
                        .anchors
                        .into_iter()
                        .map(|a| Anchor { score: a.score, label: a.label, description: a.description })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl From<&Rubric> for proto::Rubric {
    fn from(r: &Rubric) -> Self {
        proto::Rubric {
            name: Collection::Rubrics.name(&r.id),
            revision: r.revision as i32,
            etag: r.etag(),
            create_time: timestamp(r.created_at),
            update_time: timestamp(r.updated_at),
            ..(&r.content).into()
        }
    }
}

/// A rubric's content alone (a template): no name, revision or times.
impl From<&RubricContent> for proto::Rubric {
    fn from(c: &RubricContent) -> Self {
        proto::Rubric {
            name: String::new(),
            title: c.title.clone(),
            revision: 0,
            scale: Some(proto::Scale { min: c.scale.min, max: c.scale.max }),
            dimensions: c
                .dimensions
                .iter()
                .map(|d| proto::Dimension { key: d.key.clone(), title: d.title.clone(), weight: d.weight })
                .collect(),
            competencies: c
                .competencies
                .iter()
                .map(|k| proto::Competency {
                    key: k.key.clone(),
                    title: k.title.clone(),
                    dimension_key: k.dimension_key.clone(),
                    weight: k.weight,
                    description: k.description.clone(),
                    anchors: k
                        .anchors
                        .iter()
                        .map(|a| proto::Anchor {
                            score: a.score,
                            label: a.label.clone(),
                            description: a.description.clone(),
                        })
                        .collect(),
                })
                .collect(),
            etag: String::new(),
            create_time: None,
            update_time: None,
        }
    }
}

impl From<&Job> for proto::Job {
    fn from(j: &Job) -> Self {
        proto::Job {
            name: Collection::Jobs.name(&j.id),
            title: j.title.clone(),
            external_id: j.external_id.clone(),
            rubric: Collection::Rubrics.name(&j.rubric_id),
            rubric_revision: j.rubric_revision as i32,
            create_time: timestamp(j.created_at),
            update_time: timestamp(j.updated_at),
            hiring_bar: j.hiring_bar,
        }
    }
}

impl From<&Candidate> for proto::Candidate {
    fn from(c: &Candidate) -> Self {
        proto::Candidate {
            name: Collection::Candidates.name(&c.id),
            external_id: c.external_id.clone(),
            display_name: c.display_name.clone(),
            email: c.email.clone(),
            erased: c.erased_at.is_some(),
            create_time: timestamp(c.created_at),
            update_time: timestamp(c.updated_at),
        }
    }
}

impl From<&Interview> for proto::Interview {
    fn from(i: &Interview) -> Self {
        let state = if i.scorecard_id.is_some() {
            proto::interview::State::ScorecardSubmitted
        } else {
            proto::interview::State::Scheduled
        };
        proto::Interview {
            name: Collection::Interviews.name(&i.id),
            job: Collection::Jobs.name(&i.job_id),
            candidate: Collection::Candidates.name(&i.candidate_id),
            interviewer: i.interviewer.clone(),
            focus_competencies: i.focus_competencies.clone(),
            scheduled_time: timestamp(i.scheduled_at),
            state: state as i32,
            scorecard: i.scorecard_id.as_deref().map(|s| Collection::Scorecards.name(s)).unwrap_or_default(),
            create_time: timestamp(i.created_at),
            update_time: timestamp(i.updated_at),
            external_id: i.external_id.clone(),
        }
    }
}

pub fn recommendation_from_proto(value: i32) -> Option<Recommendation> {
    match proto::Recommendation::try_from(value).ok()? {
        proto::Recommendation::Unspecified => None,
        proto::Recommendation::StrongNo => Some(Recommendation::StrongNo),
        proto::Recommendation::No => Some(Recommendation::No),
        proto::Recommendation::Yes => Some(Recommendation::Yes),
        proto::Recommendation::StrongYes => Some(Recommendation::StrongYes),
    }
}

fn recommendation_to_proto(r: Recommendation) -> proto::Recommendation {
    match r {
        Recommendation::StrongNo => proto::Recommendation::StrongNo,
        Recommendation::No => proto::Recommendation::No,
        Recommendation::Yes => proto::Recommendation::Yes,
        Recommendation::StrongYes => proto::Recommendation::StrongYes,
    }
}

pub fn ratings_from_proto(ratings: Vec<proto::Rating>) -> Vec<Rating> {
    ratings.into_iter().map(|r| Rating { competency: r.competency, score: r.score, evidence: r.evidence }).collect()
}

/// A scorecard with the warnings of the call that wrote it.
pub fn scorecard(s: &Scorecard, warnings: Vec<String>) -> proto::Scorecard {
    proto::Scorecard {
        name: Collection::Scorecards.name(&s.id),
        interview: Collection::Interviews.name(&s.interview_id),
        job: Collection::Jobs.name(&s.job_id),
        candidate: Collection::Candidates.name(&s.candidate_id),
        interviewer: s.interviewer.clone(),
        ratings: s
            .content
            .ratings
            .iter()
            .map(|r| proto::Rating { competency: r.competency.clone(), score: r.score, evidence: r.evidence.clone() })
            .collect(),
        recommendation: recommendation_to_proto(s.content.recommendation) as i32,
        summary: s.content.summary.clone(),
        revision: s.revision as i32,
        submit_time: timestamp(s.submitted_at),
        update_time: timestamp(s.updated_at),
        amend_reason: s.amend_reason.clone(),
        author: s.author.clone(),
        warnings,
    }
}

pub fn outcome_from_proto(value: i32) -> Option<Outcome> {
    match proto::Outcome::try_from(value).ok()? {
        proto::Outcome::Unspecified => None,
        proto::Outcome::Advanced => Some(Outcome::Advanced),
        proto::Outcome::Rejected => Some(Outcome::Rejected),
        proto::Outcome::Offered => Some(Outcome::Offered),
        proto::Outcome::Hired => Some(Outcome::Hired),
        proto::Outcome::Withdrawn => Some(Outcome::Withdrawn),
    }
}

fn outcome_to_proto(o: Outcome) -> proto::Outcome {
    match o {
        Outcome::Advanced => proto::Outcome::Advanced,
        Outcome::Rejected => proto::Outcome::Rejected,
        Outcome::Offered => proto::Outcome::Offered,
        Outcome::Hired => proto::Outcome::Hired,
        Outcome::Withdrawn => proto::Outcome::Withdrawn,
    }
}

impl From<&Decision> for proto::Decision {
    fn from(d: &Decision) -> Self {
        proto::Decision {
            name: Collection::Decisions.name(&d.id),
            job: Collection::Jobs.name(&d.job_id),
            candidate: Collection::Candidates.name(&d.candidate_id),
            outcome: outcome_to_proto(d.outcome) as i32,
            reason: d.reason.clone(),
            decide_time: timestamp(d.decided_at),
            decided_by: d.decided_by.clone(),
            external_id: d.external_id.clone(),
            create_time: timestamp(d.created_at),
        }
    }
}

/// How far in the future a time the ATS reports (a submission, a decision)
/// may be: clock skew.
pub const FUTURE_SKEW_MICROS: i64 = 5 * 60 * 1_000_000;

/// A time the ATS says something happened: unset means `now`; not a valid
/// timestamp or in the future is a violation of `field`.
pub fn past_time(v: &mut Violations, field: &str, ts: Option<&Timestamp>, now: Micros) -> Micros {
    match ts {
        None => now,
        Some(ts) => match micros(ts) {
            Some(m) if m > now + FUTURE_SKEW_MICROS => {
                v.add(field, "must not be in the future");
                now
            }
            Some(m) => m,
            None => {
                v.add(field, "is not a valid timestamp");
                now
            }
        },
    }
}

/// The fields a decision shares between `RecordDecision` and the import,
/// checked under `prefix` (`""` or `"decision."`): the outcome, reason,
/// external id and time.
pub fn decision_fields(
    v: &mut Violations,
    prefix: &str,
    outcome: i32,
    reason: &str,
    external_id: &str,
    decide_time: Option<&Timestamp>,
    now: Micros,
) -> (Outcome, Micros) {
    let outcome = outcome_from_proto(outcome);
    if outcome.is_none() {
        v.add(format!("{prefix}outcome"), "is required: OUTCOME_ADVANCED, _REJECTED, _OFFERED, _HIRED or _WITHDRAWN");
    }
    validate::text(v, &format!("{prefix}reason"), reason, false, limits::REASON);
    validate::text(v, &format!("{prefix}external_id"), external_id, false, limits::EXTERNAL_ID);
    let at = past_time(v, &format!("{prefix}decide_time"), decide_time, now);
    (outcome.unwrap_or(Outcome::Rejected), at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_1970() {
        for m in [0, 1, 1_700_000_000_123_456, -1, -1_500_000] {
            let ts = timestamp(m).expect("some");
            assert!((0..1_000_000_000).contains(&ts.nanos));
            assert_eq!(micros(&ts), Some(m));
        }
        assert_eq!(micros(&Timestamp { seconds: 0, nanos: -1 }), None);
        assert_eq!(micros(&Timestamp { seconds: i64::MAX, nanos: 0 }), None);
    }
}

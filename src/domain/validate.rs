//! Validation rules for everything a client can send. Each function records every
//! problem it finds under the field path the client used, so one response names
//! all of them.

use std::collections::HashSet;

use super::model::{Rating, RubricContent, Scale, ScorecardContent};
use crate::error::{Error, Violations};

/// Size limits. Characters are Unicode scalar values, not bytes.
pub mod limits {
    pub const TITLE: usize = 200;
    pub const DESCRIPTION: usize = 4_000;
    pub const EVIDENCE: usize = 10_000;
    pub const SUMMARY: usize = 10_000;
    pub const REASON: usize = 2_000;
    pub const EXTERNAL_ID: usize = 200;
    pub const EMAIL: usize = 320;
    pub const USER_ID: usize = 200;
    pub const REQUEST_ID: usize = 100;
    pub const KEY: usize = 63;
    pub const DIMENSIONS: usize = 20;
    pub const COMPETENCIES: usize = 100;
    pub const RATINGS: usize = 100;
    pub const FOCUS_COMPETENCIES: usize = 100;
    /// Widest scale: `max - min` at most this, and `max` at most this.
    pub const SCALE_MAX: i32 = 10;
    pub const DEFAULT_PAGE_SIZE: usize = 50;
    pub const MAX_PAGE_SIZE: usize = 1_000;
    /// Evidence shorter than this earns a warning (not an error).
    pub const SHORT_EVIDENCE: usize = 40;
}

/// Checks a text field: required or not, length, and no control characters other
/// than tab and line breaks (PostgreSQL cannot store NUL; the rest are never
/// meant and make logs and reports lie).
pub fn text(v: &mut Violations, field: &str, value: &str, required: bool, max_chars: usize) {
    if required && value.trim().is_empty() {
        v.add(field, "is required and must not be only white space");
        return;
    }
    let chars = value.chars().count();
    if chars > max_chars {
        v.add(field, format!("is {chars} characters long; the limit is {max_chars}"));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        v.add(field, "must not contain control characters");
    }
}

/// A stable key: `[a-z][a-z0-9_]*`, 1..63 characters.
pub fn key(v: &mut Violations, field: &str, value: &str) {
    let ok = !value.is_empty()
        && value.len() <= limits::KEY
        && value.as_bytes()[0].is_ascii_lowercase()
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        v.add(field, "must be 1..63 characters of [a-z0-9_], starting with a letter");
    }
}

/// A user id (JWT `sub`), e.g. an interviewer.
pub fn user_id(v: &mut Violations, field: &str, value: &str) {
    text(v, field, value, true, limits::USER_ID);
}

/// An optional email address: plausibly shaped, not verified.
pub fn email(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    text(v, field, value, false, limits::EMAIL);
    let plausible = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    }) && !value.chars().any(char::is_whitespace);
    if !plausible {
        v.add(field, "must be an email address like name@example.com");
    }
}

fn weight(v: &mut Violations, field: &str, value: f64) {
    if !value.is_finite() || value < 0.0 {
        v.add(field, "must be a finite number >= 0");
    }
}

/// Every rule a rubric revision must satisfy. `at` is the field path of the
/// rubric in the request (e.g. `rubric`).
pub fn rubric(content: &RubricContent, at: &str) -> Violations {
    let mut v = Violations::new();
    text(&mut v, &format!("{at}.title"), &content.title, true, limits::TITLE);

    let Scale { min, max } = content.scale;
    let scale_ok = min >= 0 && max > min && max <= limits::SCALE_MAX;
    if !scale_ok {
        v.add(format!("{at}.scale"), format!("must have 0 <= min < max <= {}", limits::SCALE_MAX));
    }

    if content.dimensions.is_empty() || content.dimensions.len() > limits::DIMENSIONS {
        v.add(format!("{at}.dimensions"), format!("must have 1..{} dimensions", limits::DIMENSIONS));
    }
    let mut dimension_keys = HashSet::new();
    for (i, d) in content.dimensions.iter().enumerate() {
        let f = format!("{at}.dimensions[{i}]");
        key(&mut v, &format!("{f}.key"), &d.key);
        if !dimension_keys.insert(d.key.as_str()) {
            v.add(format!("{f}.key"), format!("duplicate dimension key `{}`", d.key));
        }
        text(&mut v, &format!("{f}.title"), &d.title, true, limits::TITLE);
        weight(&mut v, &format!("{f}.weight"), d.weight);
    }
    if !content.dimensions.is_empty() && content.dimensions.iter().all(|d| d.weight == 0.0) {
        v.add(format!("{at}.dimensions"), "weights must not all be zero");
    }

    if content.competencies.is_empty() || content.competencies.len() > limits::COMPETENCIES {
        v.add(format!("{at}.competencies"), format!("must have 1..{} competencies", limits::COMPETENCIES));
    }
    let mut competency_keys = HashSet::new();
    for (i, c) in content.competencies.iter().enumerate() {
        let f = format!("{at}.competencies[{i}]");
        key(&mut v, &format!("{f}.key"), &c.key);
        if !competency_keys.insert(c.key.as_str()) {
            v.add(format!("{f}.key"), format!("duplicate competency key `{}`", c.key));
        }
        text(&mut v, &format!("{f}.title"), &c.title, true, limits::TITLE);
        text(&mut v, &format!("{f}.description"), &c.description, false, limits::DESCRIPTION);
        weight(&mut v, &format!("{f}.weight"), c.weight);
        if !dimension_keys.contains(c.dimension_key.as_str()) {
            v.add(format!("{f}.dimension_key"), format!("`{}` is not a dimension of this rubric", c.dimension_key));
        }
        let mut anchor_scores = HashSet::new();
        for (j, a) in c.anchors.iter().enumerate() {
            let g = format!("{f}.anchors[{j}]");
            if scale_ok && !content.scale.contains(a.score) {
                v.add(format!("{g}.score"), format!("{} is outside the scale {min}..{max}", a.score));
            }
            if !anchor_scores.insert(a.score) {
                v.add(format!("{g}.score"), format!("duplicate anchor for score {}", a.score));
            }
            text(&mut v, &format!("{g}.label"), &a.label, true, limits::TITLE);
            text(&mut v, &format!("{g}.description"), &a.description, false, limits::DESCRIPTION);
        }
    }
    // A dimension whose competencies all weigh zero would divide by zero in its score.
    for d in &content.dimensions {
        let members: Vec<_> = content.competencies.iter().filter(|c| c.dimension_key == d.key).collect();
        if !members.is_empty() && members.iter().all(|c| c.weight == 0.0) {
            v.add(
                format!("{at}.competencies"),
                format!("the weights of dimension `{}`'s competencies must not all be zero", d.key),
            );
        }
    }
    v
}

/// Validates a scorecard's content against the rubric's scale and the
/// interview's focus competencies. Returns the warnings (non-fatal remarks) on
/// success.
pub fn scorecard(content: &ScorecardContent, scale: Scale, focus: &[String], v: &mut Violations) -> Vec<String> {
    let mut warnings = Vec::new();
    if content.ratings.is_empty() || content.ratings.len() > limits::RATINGS {
        v.add("ratings", format!("must have 1..{} ratings", limits::RATINGS));
    }
    let mut seen = HashSet::new();
    for (i, Rating { competency, score, evidence }) in content.ratings.iter().enumerate() {
        let f = format!("ratings[{i}]");
        if competency.is_empty() {
            v.add(format!("{f}.competency"), "is required");
        } else if !focus.iter().any(|k| k == competency) {
            v.add(
                format!("{f}.competency"),
                format!("`{competency}` is not a focus competency of this interview ({})", focus.join(", ")),
            );
        } else if !seen.insert(competency.as_str()) {
            v.add(format!("{f}.competency"), format!("`{competency}` is rated more than once"));
        }
        if !scale.contains(*score) {
            v.add(format!("{f}.score"), format!("{score} is outside the rubric's scale {}..{}", scale.min, scale.max));
        }
        text(v, &format!("{f}.evidence"), evidence, true, limits::EVIDENCE);
        if !evidence.trim().is_empty() && evidence.trim().chars().count() < limits::SHORT_EVIDENCE {
            warnings.push(format!("evidence for `{competency}` is short: describe what the candidate did or said"));
        }
    }
    text(v, "summary", &content.summary, false, limits::SUMMARY);
    for key in focus {
        if !content.ratings.iter().any(|r| &r.competency == key) {
            warnings.push(format!("focus competency `{key}` was not rated"));
        }
    }
    warnings
}

/// An idempotency key: 1..100 characters of `[A-Za-z0-9._:-]`, or empty (none).
pub fn request_id(v: &mut Violations, field: &str, value: &str) {
    let ok = value.len() <= limits::REQUEST_ID
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if !ok {
        v.add(field, "must be at most 100 characters of [A-Za-z0-9._:-]");
    }
}

/// AIP-158 page size: 0 means the default, above the maximum means the maximum.
pub fn page_size(requested: i32) -> Result<usize, Error> {
    match requested {
        n if n < 0 => Err(Error::invalid("page_size", "must not be negative")),
        0 => Ok(limits::DEFAULT_PAGE_SIZE),
        n => Ok((n as usize).min(limits::MAX_PAGE_SIZE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{Competency, Dimension, Recommendation};

    fn sample_rubric() -> RubricContent {
        RubricContent {
            title: "Backend".into(),
            scale: Scale { min: 1, max: 4 },
            dimensions: vec![Dimension { key: "technical".into(), title: "Technical".into(), weight: 1.0 }],
            competencies: vec![Competency {
                key: "api_design".into(),
                title: "API design".into(),
                dimension_key: "technical".into(),
                weight: 1.0,
                description: String::new(),
                anchors: vec![],
            }],
        }
    }

    fn fields(v: Violations) -> Vec<String> {
        match v.into_result() {
            Err(Error::InvalidArgument(list)) => list.into_iter().map(|f| f.field).collect(),
            other => panic!("expected violations, got {other:?}"),
        }
    }

    #[test]
    fn a_sound_rubric_passes() {
        assert!(rubric(&sample_rubric(), "rubric").is_empty());
    }

    #[test]
    fn rubric_reports_every_problem_at_once() {
        let mut r = sample_rubric();
        r.title = " ".into();
        r.scale = Scale { min: 3, max: 3 };
        r.dimensions[0].weight = -1.0;
        r.competencies[0].dimension_key = "nope".into();
        r.competencies.push(r.competencies[0].clone());
        let f = fields(rubric(&r, "rubric"));
        for expected in [
            "rubric.title",
            "rubric.scale",
            "rubric.dimensions[0].weight",
            "rubric.competencies[0].dimension_key",
            "rubric.competencies[1].key",
        ] {
            assert!(f.iter().any(|x| x == expected), "{expected} missing from {f:?}");
        }
    }

    #[test]
    fn all_zero_weights_are_refused() {
        let mut r = sample_rubric();
        r.dimensions[0].weight = 0.0;
        assert!(fields(rubric(&r, "rubric")).contains(&"rubric.dimensions".to_string()));
        let mut r = sample_rubric();
        r.competencies[0].weight = 0.0;
        assert!(fields(rubric(&r, "rubric")).contains(&"rubric.competencies".to_string()));
        let mut r = sample_rubric();
        r.competencies[0].weight = f64::NAN;
        assert!(fields(rubric(&r, "rubric")).contains(&"rubric.competencies[0].weight".to_string()));
    }

    #[test]
    fn scorecard_rules() {
        let focus = vec!["api_design".to_string(), "testing".to_string()];
        let content = ScorecardContent {
            ratings: vec![
                Rating { competency: "api_design".into(), score: 5, evidence: "".into() },
                Rating { competency: "security".into(), score: 2, evidence: "ok".into() },
                Rating { competency: "api_design".into(), score: 2, evidence: "x\0y".into() },
            ],
            recommendation: Recommendation::Yes,
            summary: String::new(),
        };
        let mut v = Violations::new();
        scorecard(&content, Scale { min: 1, max: 4 }, &focus, &mut v);
        let f = fields(v);
        assert_eq!(
            f,
            vec![
                "ratings[0].score",
                "ratings[0].evidence",
                "ratings[1].competency",
                "ratings[2].competency",
                "ratings[2].evidence"
            ]
        );
    }

    #[test]
    fn scorecard_warnings_name_unrated_focus_and_short_evidence() {
        let focus = vec!["api_design".to_string(), "testing".to_string()];
        let content = ScorecardContent {
            ratings: vec![Rating { competency: "api_design".into(), score: 3, evidence: "Designed it.".into() }],
            recommendation: Recommendation::Yes,
            summary: String::new(),
        };
        let mut v = Violations::new();
        let warnings = scorecard(&content, Scale { min: 1, max: 4 }, &focus, &mut v);
        assert!(v.is_empty());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("`testing` was not rated")));
    }

    #[test]
    fn text_limits_count_characters_not_bytes() {
        let mut v = Violations::new();
        text(&mut v, "t", &"é".repeat(200), true, limits::TITLE);
        assert!(v.is_empty());
        text(&mut v, "t", &"é".repeat(201), true, limits::TITLE);
        assert!(!v.is_empty());
    }

    #[test]
    fn page_sizes_follow_aip_158() {
        assert_eq!(page_size(0).ok(), Some(50));
        assert_eq!(page_size(7).ok(), Some(7));
        assert_eq!(page_size(1_000_000).ok(), Some(1_000));
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn emails_and_request_ids() {
        let mut v = Violations::new();
        email(&mut v, "e", "ana@example.com");
        email(&mut v, "e", "");
        request_id(&mut v, "r", "0192f-abc:1.2_3");
        assert!(v.is_empty());
        email(&mut v, "e", "not an email");
        request_id(&mut v, "r", "has space");
        assert_eq!(fields(v), vec!["e", "r"]);
    }
}

//! Resource names (AIP-122): `rubrics/{id}`, `jobs/{id}`, `candidates/{id}`,
//! `interviews/{id}`, `scorecards/{id}`, `decisions/{id}`.

use crate::error::{Error, Violations};

/// The collections the API names resources in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Rubrics,
    Jobs,
    Candidates,
    Interviews,
    Scorecards,
    Decisions,
    Webhooks,
    Events,
}

impl Collection {
    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Rubrics => "rubrics",
            Collection::Jobs => "jobs",
            Collection::Candidates => "candidates",
            Collection::Interviews => "interviews",
            Collection::Scorecards => "scorecards",
            Collection::Decisions => "decisions",
            Collection::Webhooks => "webhooks",
            Collection::Events => "events",
        }
    }

    /// `jobs/{id}` for an id.
    pub fn name(self, id: &str) -> String {
        format!("{}/{}", self.as_str(), id)
    }

    /// The id in `name`, or a description of what is wrong with it.
    pub fn parse(self, name: &str) -> Result<&str, String> {
        let prefix = self.as_str();
        let id = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| format!("must be a resource name of the form `{prefix}/{{id}}`"))?;
        let valid =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid { Ok(id) } else { Err(format!("`{prefix}/{{id}}` needs an id of 1..64 characters [A-Za-z0-9_-]")) }
    }

    /// Parses a required name field, recording a violation under `field` when bad.
    pub fn parse_field<'a>(self, name: &'a str, field: &str, violations: &mut Violations) -> Option<&'a str> {
        if name.is_empty() {
            violations.add(field, "is required");
            return None;
        }
        match self.parse(name) {
            Ok(id) => Some(id),
            Err(why) => {
                violations.add(field, why);
                None
            }
        }
    }

    /// Parses a required name field on its own.
    pub fn parse_required<'a>(self, name: &'a str, field: &str) -> Result<&'a str, Error> {
        let mut violations = Violations::new();
        let id = self.parse_field(name, field, &mut violations);
        violations.into_result()?;
        Ok(id.unwrap_or_default())
    }

    /// Parses an optional filter field: empty means "any".
    pub fn parse_optional<'a>(self, name: &'a str, field: &str, violations: &mut Violations) -> Option<&'a str> {
        if name.is_empty() { None } else { self.parse_field(name, field, violations) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_well_formed_names() {
        assert_eq!(Collection::Jobs.parse("jobs/abc-1_2"), Ok("abc-1_2"));
        assert_eq!(Collection::Jobs.name("x"), "jobs/x");
    }

    #[test]
    fn rejects_other_collections_and_bad_ids() {
        assert!(Collection::Jobs.parse("candidates/abc").is_err());
        assert!(Collection::Jobs.parse("jobs/").is_err());
        assert!(Collection::Jobs.parse("jobs").is_err());
        assert!(Collection::Jobs.parse("jobs/a/b").is_err());
        assert!(Collection::Jobs.parse("jobs/' OR 1=1 --").is_err());
        assert!(Collection::Jobs.parse(&format!("jobs/{}", "a".repeat(65))).is_err());
    }
}

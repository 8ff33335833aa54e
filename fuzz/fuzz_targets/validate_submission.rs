//! Any bytes, decoded as a SubmitScorecardRequest when they decode, through
//! the submission's validation: never a panic, and refusals name fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use scorecard::api::convert::{ratings_from_proto, recommendation_from_proto};
use scorecard::domain::validate;
use scorecard::domain::{Recommendation, Scale, ScorecardContent};
use scorecard::error::{Error, Violations};
use scorecard::proto;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = proto::SubmitScorecardRequest::decode(data) else { return };
    let focus: Vec<String> = vec!["api_design".into(), "debugging".into(), "collaboration".into()];
    let mut v = Violations::new();
    validate::request_id(&mut v, "request_id", &request.request_id);
    let content = ScorecardContent {
        ratings: ratings_from_proto(request.ratings),
        recommendation: recommendation_from_proto(request.recommendation).unwrap_or(Recommendation::No),
        summary: request.summary,
    };
    let _warnings = validate::scorecard(&content, Scale { min: 1, max: 5 }, &focus, &mut v);
    if let Err(Error::InvalidArgument(violations)) = v.into_result() {
        assert!(violations.iter().all(|f| !f.field.is_empty() && !f.description.is_empty()));
    }
});

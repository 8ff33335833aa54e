//! Any bytes, decoded as a Rubric when they decode, through rubric
//! validation: never a panic, and a rubric that passes has a sound scale and
//! weights.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use scorecard::domain::RubricContent;
use scorecard::domain::validate;
use scorecard::proto;

fuzz_target!(|data: &[u8]| {
    let Ok(rubric) = proto::Rubric::decode(data) else { return };
    let content = RubricContent::from(rubric);
    if validate::rubric(&content, "rubric").is_empty() {
        assert!(content.scale.min < content.scale.max);
        assert!(content.competencies.iter().all(|c| c.weight.is_finite() && c.weight >= 0.0));
    }
});

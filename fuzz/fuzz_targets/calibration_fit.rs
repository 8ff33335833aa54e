//! Arbitrary rating designs through the calibration engine: every four bytes
//! are one rating (subject, rater, competency, score on 1..5). Whatever the
//! design (one rater, all equal, disconnected groups, one competency), the fit
//! and the scores never panic and are never NaN or infinite. Competencies 0–2
//! are ordinal (the service's case: categories of a 1..5 scale), 3–5 taken as
//! continuous.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scorecard::calibration::model::{Model, Obs};

fuzz_target!(|data: &[u8]| {
    let mut model = Model::new();
    for item in 0..3 {
        model.set_item_steps(item, 4);
    }
    let mut per_subject: std::collections::BTreeMap<u32, Vec<Obs>> = Default::default();
    for (n, chunk) in data.chunks_exact(4).take(4_000).enumerate() {
        let (subject, rater, item) = (u32::from(chunk[0] % 64), u32::from(chunk[1] % 16), u32::from(chunk[2] % 6));
        let score = f64::from(chunk[3] % 5) / 4.0; // the engine's 0..1 units
        let scorecard = subject * 16 + rater;
        per_subject.entry(subject).or_default().push(Obs::new(rater, item, scorecard, score, n as f64));
    }
    for (subject, ratings) in &per_subject {
        model.add(*subject, ratings);
    }
    model.fit(20, 1e-4);
    for subject in per_subject.keys() {
        if let Some((mean, var)) = model.composite(*subject, &[(0, 1.0), (1, 1.0), (2, 2.0)]) {
            assert!(mean.is_finite() && var.is_finite() && var >= 0.0, "subject {subject}: {mean} ± {var}");
        }
    }
    if let Some(&mean) = model.item_mean.first().filter(|m| m.is_finite()) {
        let expected = model.expected_score(0, mean + 0.1);
        assert!((0.0..=1.0).contains(&expected), "{expected}");
    }
});

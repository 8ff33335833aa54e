//! Properties of the calibration engine on random synthetic organisations
//! (proptest): a rater's constant shift taken up by their offsets, equivariance under
//! relabelling, and intervals that do not widen as ratings are added.

use proptest::prelude::*;
use scorecard::calibration::model::{Model, Obs};
use scorecard::calibration::scores::{spearman, subject_scores};
use synthetic::{Org, Spec};

/// The tools' synthetic organisations (outside the service library).
#[allow(dead_code)]
#[path = "../src/cmd/synthetic.rs"]
mod synthetic;

fn small_spec(seed: u64) -> Spec {
    let mut spec = Spec::reference(seed);
    spec.jobs = 2;
    spec.candidates_per_job = 40;
    spec
}

/// Every rating of a model, as (subject, obs).
fn all_ratings(model: &Model) -> Vec<(u32, Obs)> {
    (0..model.subject_count() as u32).flat_map(|s| model.ratings(s).iter().map(move |o| (s, *o))).collect()
}

fn overall_scores(org: &Org, model: &Model) -> Vec<f64> {
    (0..model.subject_count() as u32)
        .map(|s| subject_scores(model, s, &org.shape).overall.map_or(f64::NAN, |o| o.mean))
        .collect()
}

fn rebuild(ratings: &[(u32, Obs)], f: impl Fn(u32, Obs) -> (u32, Obs)) -> Model {
    let mut m = Model::new();
    for &(s, o) in ratings {
        let (s, o) = f(s, o);
        m.add(s, &[o]);
    }
    m
}

/// Adds `shift` to every rating of the organisation's busiest rater and checks
/// that their offset moves by it while the ranking stays.
fn shift_is_taken_up_by_the_raters_offset(seed: u64, shift: f64) -> Result<(), TestCaseError> {
    let org = Org::generate(&small_spec(seed));
    let ratings = all_ratings(&org.model);
    // The rater with the most ratings.
    let rater = (0..org.model.rater_count() as u32).max_by_key(|&r| org.model.rating_count[r as usize]).unwrap_or(0);
    let mut before = rebuild(&ratings, |s, o| (s, o));
    before.fit(2_000, 1e-9);
    let mut after = rebuild(&ratings, |s, mut o| {
        if o.rater == rater {
            o = Obs::new(o.rater, o.item, o.scorecard, o.value() + shift, o.time());
        }
        (s, o)
    });
    after.fit(2_000, 1e-9);
    // A constant shift is taken up by the rater's offsets: their severity
    // and the occasion effects of their scorecards. How it splits between
    // the two follows the priors (a rater whose scorecards differ much as a
    // whole, such as a halo rater, puts a fifth of it or more on the
    // occasions), so the property holds for their sum.
    let own: Vec<u32> = ratings.iter().filter(|(_, o)| o.rater == rater).map(|(_, o)| o.scorecard).collect();
    let offset = |m: &Model| {
        m.severity[rater as usize] + own.iter().map(|&j| m.occasion[j as usize]).sum::<f64>() / own.len().max(1) as f64
    };
    let moved = offset(&after) - offset(&before);
    // Severities are centred (rating-weighted), so the rater's own share of
    // the shift is spread over everyone: compare with the share left.
    let share = f64::from(before.rating_count[rater as usize]) / ratings.len() as f64;
    let expected = shift * (1.0 - share);
    prop_assert!(
        (moved - expected).abs() <= 0.2 * shift.abs() + 1e-4,
        "offset moved {moved:.4}, expected about {expected:.4}"
    );
    let (a, b) = (overall_scores(&org, &before), overall_scores(&org, &after));
    let rho = spearman(&a, &b).unwrap_or(1.0);
    prop_assert!(rho > 0.995, "ranking changed: spearman {rho}");
    Ok(())
}

/// The case that failed in CI when the property read the severity alone
/// (it moved 78% of the shift; the rest went to the rater's occasions).
#[test]
fn the_shift_that_once_moved_the_severity_by_only_78_percent() {
    shift_is_taken_up_by_the_raters_offset(748, -0.040).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, .. ProptestConfig::default() })]

    #[test]
    fn shifting_one_raters_ratings_moves_their_offset_not_the_ranking(seed in 0u64..1_000, shift in -0.12f64..0.12) {
        shift_is_taken_up_by_the_raters_offset(seed, shift)?;
    }

    #[test]
    fn relabelling_raters_and_candidates_permutes_the_output(seed in 0u64..1_000) {
        let org = Org::generate(&small_spec(seed));
        let ratings = all_ratings(&org.model);
        let (subjects, raters) = (org.model.subject_count() as u32, org.model.rater_count() as u32);
        // Reverse both label orders.
        let mut original = rebuild(&ratings, |s, o| (s, o));
        original.fit(2_000, 1e-10);
        let mut relabelled = rebuild(&ratings, |s, mut o| {
            o.rater = raters - 1 - o.rater;
            (subjects - 1 - s, o)
        });
        relabelled.fit(2_000, 1e-10);
        for r in 0..raters {
            let (x, y) = (original.severity[r as usize], relabelled.severity[(raters - 1 - r) as usize]);
            prop_assert!((x - y).abs() < 1e-6, "rater {r}: {x} vs {y}");
        }
        for s in 0..subjects {
            let x = subject_scores(&original, s, &org.shape).overall.map(|o| o.mean);
            let y = subject_scores(&relabelled, subjects - 1 - s, &org.shape).overall.map(|o| o.mean);
            match (x, y) {
                (Some(x), Some(y)) => prop_assert!((x - y).abs() < 1e-6, "subject {s}: {x} vs {y}"),
                (x, y) => prop_assert_eq!(x.is_some(), y.is_some()),
            }
        }
    }

    #[test]
    fn more_ratings_do_not_widen_intervals_on_average(seed in 0u64..1_000) {
        let mut few = small_spec(seed);
        few.interviews_per_candidate = 3;
        let mut more = few.clone();
        more.interviews_per_candidate = 6;
        let width = |spec: &Spec| {
            let mut org = Org::generate(spec);
            org.model.fit(2_000, 1e-7);
            let widths: Vec<f64> = (0..org.model.subject_count() as u32)
                .filter_map(|s| subject_scores(&org.model, s, &org.shape).overall.map(|o| o.upper - o.lower))
                .collect();
            widths.iter().sum::<f64>() / widths.len() as f64
        };
        let (w_few, w_more) = (width(&few), width(&more));
        prop_assert!(w_more < w_few, "mean width with 6 interviews {w_more:.3} vs 3 interviews {w_few:.3}");
    }
}

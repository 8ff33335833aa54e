//! Calibration recovers known truth: a short run of the benchmark's reference
//! organisations (the full run is `scorecard bench calibration`), with the
//! floors below the targets that a regression must not cross.

use scorecard::bench::accuracy;
use scorecard::calibration::raters::{FlagKind, Thresholds};

#[test]
fn reference_organisations_are_calibrated_and_their_planted_raters_found() {
    let a = accuracy(3, &Thresholds::default());
    assert!(a.spearman_calibrated >= 0.95, "{a:?}");
    assert!(a.spearman_calibrated > a.spearman_raw + 0.01, "calibration beats the raw mean: {a:?}");
    assert!(a.top_calibrated > a.top_raw, "{a:?}");
    assert!((0.8..=0.97).contains(&a.coverage), "90% intervals cover about 90%: {a:?}");
    for kind in [
        FlagKind::Severe,
        FlagKind::Lenient,
        FlagKind::Inconsistent,
        FlagKind::Halo,
        FlagKind::CentralTendency,
        FlagKind::Drift,
    ] {
        let (_, precision, recall, _, planted) =
            a.flags.iter().find(|f| f.0 == kind).copied().unwrap_or((kind, 0.0, 0.0, 0, 0));
        assert_eq!(planted, 6, "two of each kind per organisation");
        assert!(precision >= 0.8 && recall >= 0.8, "{kind:?}: precision {precision}, recall {recall}");
    }
    assert!(a.normal_flagged_max <= 1, "{a:?}");
}

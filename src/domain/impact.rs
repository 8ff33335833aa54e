//! Adverse-impact tables: per self-identified category, the share of subjects
//! a measure counts (a scoring or recommendation rate), its impact ratio
//! against the highest rate, and the EEOC four-fifths rule (29 CFR
//! 1607.4(D)); the definitions are NYC Local Law 144's bias audit. Pure: the
//! API gathers the subjects, this counts. Nothing here feeds a score.

use std::collections::{BTreeMap, HashMap};

/// An impact ratio under this is below four-fifths.
pub const FOUR_FIFTHS: f64 = 0.8;
/// A category under this share of the subjects whose category is known is
/// excluded from impact ratios.
pub const DEFAULT_MIN_CATEGORY_SHARE: f64 = 0.02;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Measure {
    /// Calibrated overall score strictly above the median of the subject's own job.
    CalibratedScore,
    /// The same on the plain mean of the ratings.
    RawMean,
    /// More than half of the subject's scorecards recommend YES or STRONG_YES.
    Recommendation,
    /// Selection rate: the latest recorded decision is ADVANCED, OFFERED or
    /// HIRED; subjects without a decision have no value.
    Decision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grouping {
    Sex,
    RaceEthnicity,
    /// Sex and race or ethnicity together, `female/asian`; known only when both are.
    Intersectional,
}

/// One (job, candidate) pair in scope, as the report sees it.
#[derive(Debug, Clone)]
pub struct Subject {
    pub job: std::sync::Arc<str>,
    /// Category labels; `None` when unknown (not given, declined, erased).
    pub sex: Option<&'static str>,
    pub race_ethnicity: Option<&'static str>,
    /// Overall scores; `None` when no weighted competency was rated.
    pub calibrated: Option<f64>,
    pub raw_mean: Option<f64>,
    pub recommends: bool,
    /// Whether the latest decision selected the subject; `None` without a decision.
    pub selected: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub category: String,
    /// Subjects of the category that the measure has a value for.
    pub count: usize,
    pub rate: f64,
    pub impact_ratio: f64,
    pub excluded: bool,
    pub below_four_fifths: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub measure: Measure,
    pub grouping: Grouping,
    pub rows: Vec<Row>,
}

const MEASURES: [Measure; 4] = [Measure::CalibratedScore, Measure::RawMean, Measure::Recommendation, Measure::Decision];
const GROUPINGS: [Grouping; 3] = [Grouping::Sex, Grouping::RaceEthnicity, Grouping::Intersectional];

/// Every measure under every grouping.
pub fn tables(subjects: &[Subject], min_category_share: f64) -> Vec<Table> {
    let mut out = Vec::new();
    for measure in MEASURES {
        let counted = counted(subjects, measure);
        for grouping in GROUPINGS {
            out.push(Table { measure, grouping, rows: rows(subjects, &counted, grouping, min_category_share) });
        }
    }
    out
}

/// Per subject: whether the measure counts it, or `None` without a value.
fn counted(subjects: &[Subject], measure: Measure) -> Vec<Option<bool>> {
    let value = |s: &Subject| match measure {
        Measure::CalibratedScore => s.calibrated,
        Measure::RawMean => s.raw_mean,
        Measure::Recommendation | Measure::Decision => None,
    };
    match measure {
        Measure::Recommendation => return subjects.iter().map(|s| Some(s.recommends)).collect(),
        Measure::Decision => return subjects.iter().map(|s| s.selected).collect(),
        Measure::CalibratedScore | Measure::RawMean => {}
    }
    // Each job's median over all its subjects with a value (every category,
    // unknown included): the scoring rate is computed per job, then pooled.
    let mut by_job: HashMap<&str, Vec<f64>> = HashMap::new();
    for s in subjects {
        if let Some(v) = value(s) {
            by_job.entry(&*s.job).or_default().push(v);
        }
    }
    let medians: HashMap<&str, f64> = by_job.into_iter().map(|(job, values)| (job, median(values))).collect();
    subjects.iter().map(|s| value(s).map(|v| v > medians[&*s.job])).collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// The subject's category under a grouping, as (first label, second label
/// of an intersection); `None` when unknown.
fn label(s: &Subject, grouping: Grouping) -> Option<(&'static str, Option<&'static str>)> {
    match grouping {
        Grouping::Sex => Some((s.sex?, None)),
        Grouping::RaceEthnicity => Some((s.race_ethnicity?, None)),
        Grouping::Intersectional => Some((s.sex?, Some(s.race_ethnicity?))),
    }
}

fn rows(subjects: &[Subject], counted: &[Option<bool>], grouping: Grouping, min_share: f64) -> Vec<Row> {
    // Keyed by labels (no string built per subject); named once per category.
    let mut by_label: HashMap<(&'static str, Option<&'static str>), (usize, usize)> = HashMap::new();
    for (s, hit) in subjects.iter().zip(counted) {
        let (Some(category), Some(hit)) = (label(s, grouping), hit) else { continue };
        let entry = by_label.entry(category).or_default();
        entry.0 += 1;
        entry.1 += usize::from(*hit);
    }
    let categories: BTreeMap<String, (usize, usize)> = by_label
        .into_iter()
        .map(|((first, second), counts)| match second {
            Some(second) => (format!("{first}/{second}"), counts),
            None => (first.to_string(), counts),
        })
        .collect();
    let known: usize = categories.values().map(|(n, _)| n).sum();
    let excluded = |n: usize| (n as f64) < min_share * known as f64;
    let best = categories
        .values()
        .filter(|(n, _)| !excluded(*n))
        .map(|(n, hits)| *hits as f64 / *n as f64)
        .fold(0.0_f64, f64::max);
    categories
        .into_iter()
        .map(|(category, (count, hits))| {
            let rate = hits as f64 / count as f64;
            let excluded = excluded(count);
            // When no category is counted at all, no one is disadvantaged.
            let impact_ratio = if excluded {
                0.0
            } else if best > 0.0 {
                rate / best
            } else {
                1.0
            };
            Row {
                category,
                count,
                rate,
                impact_ratio,
                excluded,
                below_four_fifths: !excluded && impact_ratio < FOUR_FIFTHS,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(job: &str, sex: Option<&'static str>, race: Option<&'static str>, score: f64, yes: bool) -> Subject {
        Subject {
            job: job.into(),
            sex,
            race_ethnicity: race,
            calibrated: Some(score),
            raw_mean: Some(score + 0.1),
            recommends: yes,
            selected: None,
        }
    }

    /// A hand-computed example. Job A: scores 1, 2, 3, 4 (median 2.5); job B:
    /// 1, 2, 3 (median 2). Above their job's median: A's 3 and 4, B's 3.
    #[test]
    fn rates_ratios_and_exclusions_follow_the_definitions() {
        let subjects = vec![
            subject("a", Some("female"), Some("asian"), 1.0, false),
            subject("a", Some("female"), Some("white"), 3.0, true),
            subject("a", Some("male"), Some("white"), 4.0, true),
            subject("a", None, Some("white"), 2.0, true),
            subject("b", Some("male"), Some("asian"), 3.0, false),
            subject("b", Some("male"), None, 1.0, true),
            subject("b", Some("another"), Some("white"), 2.0, false),
        ];
        let tables = tables(&subjects, 0.2);
        let table = |m, g| &tables.iter().find(|t| t.measure == m && t.grouping == g).expect("table").rows;

        // Sex, calibrated: female 1 of 2 above (0.5), male 2 of 3 (0.667),
        // another 0 of 1; 6 known, 0.2 × 6 = 1.2: `another` (1) is excluded.
        let sex = table(Measure::CalibratedScore, Grouping::Sex);
        let names: Vec<&str> = sex.iter().map(|r| r.category.as_str()).collect();
        assert_eq!(names, ["another", "female", "male"]);
        assert_eq!(
            (sex[0].count, sex[0].excluded, sex[0].impact_ratio, sex[0].below_four_fifths),
            (1, true, 0.0, false)
        );
        assert_eq!((sex[1].count, sex[1].rate), (2, 0.5));
        assert!((sex[2].rate - 2.0 / 3.0).abs() < 1e-12);
        assert!((sex[1].impact_ratio - 0.75).abs() < 1e-12, "0.5 / (2/3)");
        assert!(sex[1].below_four_fifths && !sex[2].below_four_fifths);
        assert_eq!(sex[2].impact_ratio, 1.0);

        // Race, recommendation: asian 0 of 2, white 3 of 4 → ratio 0 → below.
        let race = table(Measure::Recommendation, Grouping::RaceEthnicity);
        assert_eq!((race[0].category.as_str(), race[0].count, race[0].rate), ("asian", 2, 0.0));
        assert_eq!((race[1].category.as_str(), race[1].count, race[1].rate), ("white", 4, 0.75));
        assert!(race[0].below_four_fifths);

        // Intersections only where both are known: 5 subjects.
        let both = table(Measure::CalibratedScore, Grouping::Intersectional);
        let labels: Vec<(&str, usize)> = both.iter().map(|r| (r.category.as_str(), r.count)).collect();
        assert_eq!(
            labels,
            [("another/white", 1), ("female/asian", 1), ("female/white", 1), ("male/asian", 1), ("male/white", 1)]
        );

        // Raw means are ranked against their own job's median too.
        let raw = table(Measure::RawMean, Grouping::Sex);
        assert_eq!(raw.iter().map(|r| r.rate).collect::<Vec<_>>(), sex.iter().map(|r| r.rate).collect::<Vec<_>>());
    }

    #[test]
    fn subjects_without_a_score_are_left_out_of_the_scoring_rates_only() {
        let mut unscored = subject("a", Some("female"), None, 0.0, true);
        unscored.calibrated = None;
        unscored.raw_mean = None;
        let subjects = vec![unscored, subject("a", Some("male"), None, 1.0, false)];
        let tables = tables(&subjects, DEFAULT_MIN_CATEGORY_SHARE);
        let calibrated = &tables[0].rows;
        assert_eq!(calibrated.len(), 1, "{calibrated:?}");
        let recommendation = &tables.iter().find(|t| t.measure == Measure::Recommendation).expect("table").rows;
        assert_eq!(recommendation.len(), 2);
        // Nobody above the median: no one is counted, no one is disadvantaged.
        assert_eq!(calibrated[0].impact_ratio, 1.0);
    }

    /// Selection rates count only subjects with a decision: female 1 selected
    /// of 2 decided (0.5; the undecided third is left out), male 2 of 2 (1.0).
    #[test]
    fn selection_rates_count_decided_subjects_only() {
        let decided = |sex, selected| Subject { selected, ..subject("a", Some(sex), None, 1.0, false) };
        let subjects = vec![
            decided("female", Some(true)),
            decided("female", Some(false)),
            decided("female", None),
            decided("male", Some(true)),
            decided("male", Some(true)),
        ];
        let tables = tables(&subjects, DEFAULT_MIN_CATEGORY_SHARE);
        let rows =
            &tables.iter().find(|t| t.measure == Measure::Decision && t.grouping == Grouping::Sex).expect("table").rows;
        assert_eq!(rows.iter().map(|r| (r.count, r.rate)).collect::<Vec<_>>(), [(2, 0.5), (2, 1.0)]);
        assert_eq!((rows[0].impact_ratio, rows[0].below_four_fifths), (0.5, true));
    }
}

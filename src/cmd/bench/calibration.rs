//! `scorecard bench calibration`: fits synthetic organisations with known truth
//! and prints how well calibration recovers it, and how fast it is.

use std::collections::HashMap;
use std::time::Instant;

use crate::cmd::synthetic::{NORMAL_SEVERITY_SD, Org, RaterKind, Rng, Spec};
use scorecard::calibration::model::Model;
use scorecard::calibration::model::Obs;
use scorecard::calibration::raters::{self, FlagKind, Thresholds};
use scorecard::calibration::scores::{JobRanking, connected_groups, ranking_scores, spearman, subject_scores};

fn kind_flag(kind: RaterKind) -> Option<FlagKind> {
    match kind {
        RaterKind::Normal => None,
        RaterKind::Severe => Some(FlagKind::Severe),
        RaterKind::Lenient => Some(FlagKind::Lenient),
        RaterKind::Noisy => Some(FlagKind::Inconsistent),
        RaterKind::Halo => Some(FlagKind::Halo),
        RaterKind::CentralTendency => Some(FlagKind::CentralTendency),
        RaterKind::Drift => Some(FlagKind::Drift),
    }
}

#[derive(Default)]
struct Accuracy {
    spearman_calibrated: Vec<f64>,
    spearman_raw: Vec<f64>,
    top_calibrated: Vec<f64>,
    top_raw: Vec<f64>,
    covered: usize,
    intervals: usize,
    competency_covered: usize,
    competency_intervals: usize,
    /// per flag kind: (true positives, flagged, planted)
    flags: HashMap<FlagKind, (usize, usize, usize)>,
    normal_flagged_per_org: Vec<usize>,
    /// SEVERE or LENIENT flags raised on raters generated as normal, and how
    /// many of those raters' true severity lies beyond the flag's line.
    normal_severity_flags: (usize, usize),
    sweeps: Vec<usize>,
    /// Per half-point band of the truth (1–1.5, …): (intervals, covered, Σ error),
    /// of the overall scores and of the competency scores.
    bands: Vec<(usize, usize, f64)>,
    competency_bands: Vec<(usize, usize, f64)>,
}

/// Adds one interval to its half-point band of the truth.
fn add_to_band(bands: &mut [(usize, usize, f64)], truth: f64, lower: f64, mean: f64, upper: f64) -> bool {
    let last = bands.len().saturating_sub(1);
    let band = (((truth - 1.0) * 2.0).floor().max(0.0) as usize).min(last);
    let covered = lower <= truth && truth <= upper;
    let b = &mut bands[band];
    b.0 += 1;
    b.1 += usize::from(covered);
    b.2 += mean - truth;
    covered
}

fn top_precision(estimate: &[f64], truth: &[f64], share: f64) -> f64 {
    let k = ((estimate.len() as f64 * share).round() as usize).max(1);
    let top = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
        idx.truncate(k);
        idx
    };
    let (e, t) = (top(estimate), top(truth));
    e.iter().filter(|i| t.contains(i)).count() as f64 / k as f64
}

fn evaluate(org: &mut Org, thresholds: &Thresholds, acc: &mut Accuracy) {
    let report = org.model.fit(500, 1e-6);
    acc.sweeps.push(report.sweeps);
    let jobs = org.subject_job.iter().copied().max().map_or(0, |j| j + 1);
    for job in 0..jobs {
        let subjects: Vec<u32> =
            (0..org.subject_job.len() as u32).filter(|&s| org.subject_job[s as usize] == job).collect();
        let (mut calibrated, mut raw, mut truth) = (Vec::new(), Vec::new(), Vec::new());
        for &s in &subjects {
            let scores = subject_scores(&org.model, s, &org.shape);
            let Some(overall) = scores.overall else { continue };
            calibrated.push(overall.mean);
            raw.push(overall.raw_mean);
            truth.push(org.truth(s, &(0..10).collect::<Vec<_>>()));
            let assessed = org.truth(s, &org.rated_items(s));
            acc.intervals += 1;
            if add_to_band(&mut acc.bands, assessed, overall.lower, overall.mean, overall.upper) {
                acc.covered += 1;
            }
            for (item, score) in &scores.competencies {
                let t = org.truth(s, &[*item]);
                acc.competency_intervals += 1;
                if add_to_band(&mut acc.competency_bands, t, score.lower, score.mean, score.upper) {
                    acc.competency_covered += 1;
                }
            }
        }
        if let (Some(c), Some(r)) = (spearman(&calibrated, &truth), spearman(&raw, &truth)) {
            acc.spearman_calibrated.push(c);
            acc.spearman_raw.push(r);
            acc.top_calibrated.push(top_precision(&calibrated, &truth, 0.1));
            acc.top_raw.push(top_precision(&raw, &truth, 0.1));
        }
    }
    let reports = raters::reports(&org.model, &org.scorecards, thresholds);
    let mut normal_flagged = 0;
    // The organisation's average true severity, weighted by ratings as the
    // model centres its estimates.
    let total: f64 = org.model.rating_count.iter().map(|&n| f64::from(n)).sum();
    let centre: f64 =
        org.rater_severity.iter().zip(&org.model.rating_count).map(|(s, &n)| s * f64::from(n)).sum::<f64>()
            / total.max(1.0);
    let line = thresholds.severity * f64::from(org.points - 1);
    for report in &reports {
        let kind = org.rater_kinds[report.rater as usize];
        let planted = kind_flag(kind);
        let raised: Vec<FlagKind> =
            report.flags.iter().map(|f| f.kind).filter(|k| *k != FlagKind::InsufficientData).collect();
        if kind == RaterKind::Normal && !raised.is_empty() {
            normal_flagged += 1;
        }
        for flag in &raised {
            if kind == RaterKind::Normal && matches!(flag, FlagKind::Severe | FlagKind::Lenient) {
                let truth = org.rater_severity[report.rater as usize] - centre;
                let beyond = if *flag == FlagKind::Severe { truth < -line } else { truth > line };
                acc.normal_severity_flags.0 += 1;
                acc.normal_severity_flags.1 += usize::from(beyond);
            }
            let e = acc.flags.entry(*flag).or_default();
            e.1 += 1;
            if Some(*flag) == planted {
                e.0 += 1;
            }
        }
        if let Some(p) = planted {
            acc.flags.entry(p).or_default().2 += 1;
        }
    }
    acc.normal_flagged_per_org.push(normal_flagged);
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
}

/// Local updates timed per organisation size (their median and mean are printed).
const UPDATES_TIMED: u32 = 1_000;

/// Runs of every rater's reports timed per organisation size (their median is printed).
const REPORTS_TIMED: u32 = 3;

/// The `i`-th extra scorecard of the speed runs (four ratings of one candidate by
/// one rater, spread over the organisation, rated as the rater would from the
/// candidate's true level), applied as a submission is: added, then updated
/// locally. Returns the candidates it rescored (`None`: all).
fn add_scorecard(org: &mut Org, rng: &mut Rng, i: u32) -> Option<Vec<u32>> {
    let subject = (i * 7919) % org.model.subject_count() as u32;
    let rater = (i * 104_729) % org.model.rater_count() as u32;
    let scorecard = org.scorecards.len() as u32 + i;
    let obs: Vec<Obs> =
        (0..4).map(|k| Obs::new(rater, k, scorecard, org.new_rating(rng, subject, rater, k), 0.5)).collect();
    org.model.add(subject, &obs);
    org.model.update_locally(subject, &[rater])
}

/// Resident memory in bytes of this process, or of process `pid` on this
/// machine (Linux), if known.
pub(crate) fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = pid.map_or_else(|| "/proc/self/status".to_string(), |p| format!("/proc/{p}/status"));
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Accuracy of calibration on replicate reference organisations.
#[derive(Debug, Clone)]
pub struct AccuracySummary {
    pub jobs: usize,
    pub spearman_calibrated: f64,
    pub spearman_raw: f64,
    pub top_calibrated: f64,
    pub top_raw: f64,
    pub coverage: f64,
    pub competency_coverage: f64,
    /// Per half-point band of the truth from 1: (intervals, coverage, mean
    /// error), of the overall scores and of the competency scores.
    pub coverage_by_truth: Vec<(usize, f64, f64)>,
    pub competency_coverage_by_truth: Vec<(usize, f64, f64)>,
    /// (kind, precision, recall, flagged, planted)
    pub flags: Vec<(FlagKind, f64, f64, usize, usize)>,
    pub normal_flagged_mean: f64,
    pub normal_flagged_max: usize,
    /// (SEVERE or LENIENT flags on raters generated as normal, how many of
    /// them truly lie beyond the flag's line).
    pub normal_severity_flags: (usize, usize),
    pub mean_sweeps: f64,
}

/// Fits `orgs` reference organisations (seeds 1000…) rated on a 1..`points`
/// scale and measures them against their truth.
pub fn accuracy(orgs: usize, points: u8, thresholds: &Thresholds) -> AccuracySummary {
    let bands = 2 * usize::from(points.max(2) - 1);
    let mut acc =
        Accuracy { bands: vec![(0, 0, 0.0); bands], competency_bands: vec![(0, 0, 0.0); bands], ..Accuracy::default() };
    for seed in 0..orgs as u64 {
        let mut spec = Spec::reference(1000 + seed);
        spec.points = points;
        let mut org = Org::generate(&spec);
        evaluate(&mut org, thresholds, &mut acc);
    }
    let summarise = |bands: &[(usize, usize, f64)]| -> Vec<(usize, f64, f64)> {
        bands.iter().map(|&(n, c, e)| (n, c as f64 / n.max(1) as f64, e / n.max(1) as f64)).collect()
    };
    let mut kinds: Vec<_> = acc.flags.keys().copied().collect();
    kinds.sort();
    let flags = kinds
        .into_iter()
        .map(|kind| {
            let (tp, flagged, planted) = acc.flags[&kind];
            let precision = if flagged > 0 { tp as f64 / flagged as f64 } else { f64::NAN };
            let recall = if planted > 0 { tp as f64 / planted as f64 } else { f64::NAN };
            (kind, precision, recall, flagged, planted)
        })
        .collect();
    AccuracySummary {
        jobs: acc.spearman_calibrated.len(),
        spearman_calibrated: mean(&acc.spearman_calibrated),
        spearman_raw: mean(&acc.spearman_raw),
        top_calibrated: mean(&acc.top_calibrated),
        top_raw: mean(&acc.top_raw),
        coverage: acc.covered as f64 / acc.intervals.max(1) as f64,
        competency_coverage: acc.competency_covered as f64 / acc.competency_intervals.max(1) as f64,
        coverage_by_truth: summarise(&acc.bands),
        competency_coverage_by_truth: summarise(&acc.competency_bands),
        flags,
        normal_flagged_mean: mean(&acc.normal_flagged_per_org.iter().map(|&n| n as f64).collect::<Vec<_>>()),
        normal_flagged_max: acc.normal_flagged_per_org.iter().max().copied().unwrap_or(0),
        normal_severity_flags: acc.normal_severity_flags,
        mean_sweeps: mean(&acc.sweeps.iter().map(|&n| n as f64).collect::<Vec<_>>()),
    }
}

/// The coverage table by half-point band of the truth, one line.
fn bands_line(bands: &[(usize, f64, f64)]) -> String {
    let bands: Vec<String> = bands
        .iter()
        .enumerate()
        .filter(|(_, b)| b.0 > 0)
        .map(|(i, (n, c, e))| {
            format!("{:.1}–{:.1}: {c:.2} (n {n}, error {e:+.2})", 1.0 + i as f64 / 2.0, 1.5 + i as f64 / 2.0)
        })
        .collect();
    bands.join("; ")
}

/// Runs the benchmark and prints its report. `orgs`: replicate reference
/// organisations; `sizes`: rating counts for the speed runs; `points`: the
/// scales of the accuracy runs.
pub fn run(orgs: usize, sizes: &[usize], points: &[u8], thresholds: &Thresholds) {
    println!("# scorecard calibration benchmark");
    for &points in points {
        report_accuracy(orgs, points, thresholds);
    }
    let live_orgs = orgs.min(20);
    let (live, settled) = live_against_settled(live_orgs);
    println!(
        "live reads ({live_orgs} organisations on 1..5; a fifth of the scorecards arrive one by one after a fit, no refit): spearman {live:.4}, settled {settled:.4}, gap {:+.4}",
        live - settled
    );
    report_hard_scenarios(thresholds);
    report_speed(sizes, thresholds);
}

fn report_accuracy(orgs: usize, points: u8, thresholds: &Thresholds) {
    println!();
    println!(
        "## Accuracy on 1..{points}: {orgs} reference organisations (300 candidates × 5 interviews × 3–5 focus competencies, 36 raters, 12 planted)"
    );
    let started = Instant::now();
    let a = accuracy(orgs, points, thresholds);
    println!(
        "spearman vs truth per job (mean of {} jobs): calibrated {:.3}, raw mean {:.3}, gain {:+.3}",
        a.jobs,
        a.spearman_calibrated,
        a.spearman_raw,
        a.spearman_calibrated - a.spearman_raw
    );
    println!("top-10% precision per job: calibrated {:.3}, raw mean {:.3}", a.top_calibrated, a.top_raw);
    println!("90% interval coverage: overall {:.3}, competency {:.3}", a.coverage, a.competency_coverage);
    println!("  overall coverage by true score: {}", bands_line(&a.coverage_by_truth));
    println!("  competency coverage by true score: {}", bands_line(&a.competency_coverage_by_truth));
    println!("flags (over all organisations):");
    println!("  {:<26} {:>9} {:>7} {:>8} {:>8}", "kind", "precision", "recall", "flagged", "planted");
    for (kind, precision, recall, flagged, planted) in &a.flags {
        println!("  {:<26} {precision:>9.3} {recall:>7.3} {flagged:>8} {planted:>8}", format!("{kind:?}"));
    }
    println!("normal raters flagged per organisation: mean {:.2}, max {}", a.normal_flagged_mean, a.normal_flagged_max);
    let (flagged, beyond) = a.normal_severity_flags;
    println!(
        "  of which SEVERE or LENIENT: {flagged}, {beyond} of them on raters whose true severity is beyond the line (the normal raters' spread, {NORMAL_SEVERITY_SD} points, reaches it)"
    );
    println!("fit sweeps: mean {:.1}; accuracy runs took {:.1}s", a.mean_sweeps, started.elapsed().as_secs_f64());
}

fn report_hard_scenarios(thresholds: &Thresholds) {
    println!();
    println!("## Hard scenarios");
    let mut spec = Spec::reference(77);
    spec.selective_rater_above = Some(0.8);
    let mut org = Org::generate(&spec);
    org.model.fit(500, 1e-6);
    if let Some(r) = org.selective_rater {
        let reports = raters::reports(&org.model, &org.scorecards, thresholds);
        let report = reports.iter().find(|x| x.rater == r);
        let n = org.model.rating_count[r as usize];
        let own: f64 = org
            .model
            .rated_by(r)
            .iter()
            .flat_map(|&c| org.model.ratings(c).iter().filter(|o| o.rater == r).map(|o| o.value()))
            .sum::<f64>()
            / f64::from(n.max(1));
        let all: Vec<f64> = (0..org.model.subject_count() as u32)
            .flat_map(|c| org.model.ratings(c).iter().map(|o| o.value()))
            .collect();
        let org_mean = mean(&all);
        println!(
            "selective rater (meets only strong candidates, true severity 0): raw mean {:+.2} points above the organisation (what z-scoring would call leniency); calibrated severity {:+.2} points; flags: {:?}",
            4.0 * (own - org_mean),
            report.map_or(f64::NAN, |x| x.severity),
            report.map(|x| x.flags.iter().map(|f| f.kind).collect::<Vec<_>>()).unwrap_or_default()
        );
    }
    let mut spec = Spec::reference(78);
    spec.island = Some((3, 20));
    let mut org = Org::generate(&spec);
    org.model.fit(500, 1e-6);
    let groups = connected_groups(&org.model);
    let mut distinct: Vec<u32> = groups.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let island = org.island_job.unwrap_or(u32::MAX);
    let island_groups: std::collections::BTreeSet<u32> =
        (0..groups.len()).filter(|&s| org.subject_job[s] == island).map(|s| groups[s]).collect();
    let main_groups: std::collections::BTreeSet<u32> =
        (0..groups.len()).filter(|&s| org.subject_job[s] != island).map(|s| groups[s]).collect();
    println!(
        "disconnected group (a job whose 20 candidates meet only 3 raters nobody else shares): {} connected groups found; island shares a group with the rest: {}",
        distinct.len(),
        !island_groups.is_disjoint(&main_groups)
    );
}

fn report_speed(sizes: &[usize], thresholds: &Thresholds) {
    println!();
    println!("## Speed and memory (one core)");
    println!(
        "(fit and updates on one core; reports ms: all raters' reports, the median of {REPORTS_TIMED} runs, on every core: {})",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>10} {:>11} {:>7} {:>9} {:>12} {:>13} {:>16} {:>14} {:>11}",
        "ratings",
        "candidates",
        "raters",
        "sweeps",
        "cold fit ms",
        "update ms",
        "update mean ms",
        "state MB (RSS)",
        "reports ms"
    );
    for &size in sizes {
        let spec = Spec::sized(9, size);
        let before = rss_bytes(None);
        let mut org = Org::generate(&spec);
        let built = rss_bytes(None);
        let started = Instant::now();
        let report = org.model.fit(200, scorecard::calibrator::FIT_TOLERANCE);
        let fit_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut times = Vec::new();
        let mut rng = Rng::new(17);
        for i in 0..UPDATES_TIMED {
            let t = Instant::now();
            add_scorecard(&mut org, &mut rng, i);
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        // The median of three: one run moves by a fifth on a shared machine.
        let mut report_times: Vec<f64> = (0..REPORTS_TIMED)
            .map(|_| {
                let t = Instant::now();
                let reports = raters::reports(&org.model, &org.scorecards, thresholds);
                std::hint::black_box(reports.len());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        report_times.sort_by(f64::total_cmp);
        let reports_ms = report_times[report_times.len() / 2];
        let state_mb = match (before, built) {
            (Some(b), Some(a)) => format!("{:.0}", (a.saturating_sub(b)) as f64 / 1e6),
            _ => "?".into(),
        };
        println!(
            "{:>10} {:>11} {:>7} {:>9} {:>12.0} {:>13.2} {:>16.2} {:>14} {:>11.0}",
            org.model.total_ratings(),
            org.model.subject_count(),
            org.model.rater_count(),
            report.sweeps,
            fit_ms,
            times[times.len() / 2],
            mean(&times),
            state_mb,
            reports_ms
        );
    }
    // Ranking one job of 10,000 candidates.
    let mut spec = Spec::sized(11, 200_000);
    spec.jobs = 1;
    spec.candidates_per_job = 10_000;
    let mut org = Org::generate(&spec);
    org.model.fit(200, scorecard::calibrator::FIT_TOLERANCE);
    let subjects: Vec<u32> = (0..org.model.subject_count() as u32).collect();
    let started = Instant::now();
    let mut ranking = JobRanking::build(&org.model, &org.shape, subjects.iter().copied());
    let build_ms = started.elapsed().as_secs_f64() * 1e3;
    // Then, as GetRanking after each new scorecard: the local update, and
    // re-ranking only the candidates whose posterior it changed.
    let mut times = Vec::new();
    let mut touched_counts = Vec::new();
    let mut rng = Rng::new(17);
    for i in 0..20u32 {
        let touched = add_scorecard(&mut org, &mut rng, i).unwrap_or_else(|| subjects.clone());
        let t = Instant::now();
        touched_counts.push(touched.len());
        ranking.update(&org.model, &org.shape, touched);
        let first_page = ranking.in_order().take(50).count();
        std::hint::black_box(first_page);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "ranking a job of {} candidates: {build_ms:.1} ms from scratch; after one new scorecard {:.2} ms (median of 20; {} candidates rescored on median)",
        ranking.len(),
        times[times.len() / 2],
        {
            touched_counts.sort_unstable();
            touched_counts[touched_counts.len() / 2]
        }
    );
}

/// Calibration recovers known truth: a short run of the benchmark's reference
/// organisations (the full run is `scorecard bench calibration`), with the
/// floors below the targets that a regression must not cross.
/// Mean per-job Spearman of the calibrated overall score against the truth.
fn job_spearman(org: &Org, model: &Model) -> f64 {
    let jobs = org.subject_job.iter().copied().max().map_or(0, |j| j + 1);
    let all_items: Vec<u32> = (0..10).collect();
    let per_job: Vec<f64> = (0..jobs)
        .filter_map(|job| {
            let (mut calibrated, mut truth) = (Vec::new(), Vec::new());
            for s in (0..org.subject_job.len() as u32).filter(|&s| org.subject_job[s as usize] == job) {
                if let Some(overall) = ranking_scores(model, s, &org.shape).overall {
                    calibrated.push(overall.mean);
                    truth.push(org.truth(s, &all_items));
                }
            }
            spearman(&calibrated, &truth)
        })
        .collect();
    mean(&per_job)
}

/// Live reads against settled ones: the organisation fitted without a fifth of
/// its scorecards, which then arrive one by one through the live path (added,
/// updated locally, as a submission is) with no background refit; the ranking
/// read right then is compared with the one after the service's refit.
/// Returns (live, settled) mean Spearman against the truth.
pub fn live_against_settled(orgs: usize) -> (f64, f64) {
    let (mut live, mut settled) = (Vec::new(), Vec::new());
    for seed in 0..orgs as u64 {
        let org = Org::generate(&Spec::reference(1000 + seed));
        let mut cards: Vec<(u32, Vec<Obs>)> = Vec::new();
        for s in 0..org.model.subject_count() as u32 {
            for o in org.model.ratings(s) {
                match cards.iter_mut().find(|(subject, c)| *subject == s && c[0].scorecard == o.scorecard) {
                    Some((_, c)) => c.push(*o),
                    None => cards.push((s, vec![*o])),
                }
            }
        }
        let (burst, before): (Vec<_>, Vec<_>) = cards.into_iter().partition(|(_, c)| c[0].scorecard.is_multiple_of(5));
        // The scales and dimensions as the service declares them.
        let mut model = Model::new();
        for k in 0..org.model.item_count() as u32 {
            model.set_item_steps(k, org.model.item_steps(k));
            model.set_item_group(k, org.model.item_group(k));
        }
        for (s, c) in &before {
            model.add(*s, c);
        }
        model.fit(scorecard::calibrator::FIT_SWEEPS, scorecard::calibrator::FIT_TOLERANCE);
        for (s, c) in &burst {
            model.add(*s, c);
            model.update_locally(*s, &[c[0].rater]);
        }
        live.push(job_spearman(&org, &model));
        model.fit(scorecard::calibrator::FIT_SWEEPS, scorecard::calibrator::FIT_TOLERANCE);
        settled.push(job_spearman(&org, &model));
    }
    (mean(&live), mean(&settled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_organisations_are_calibrated_and_their_planted_raters_found() {
        let a = accuracy(3, 5, &Thresholds::default());
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
}

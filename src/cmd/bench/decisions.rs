//! `scorecard bench decisions`: are the decision numbers honest? On synthetic
//! organisations with known truth: the reliability table of `p_above_bar`
//! (in bins of the probability, the share whose true score clears the bar),
//! its Brier score against the raw mean's (turned into a probability by the
//! best monotone map fitted on the *other* organisations), the same for
//! pairwise probabilities and tiers, and the interview planner against
//! interviews chosen at random.

use crate::cmd::synthetic::{Org, Rng, Spec};
use scorecard::calibration::decisions::{self, PlanRequest, ScoreDistribution, TIER_CONFIDENCE};
use scorecard::calibration::scores::ranking_scores;

/// One candidate's probability and its truth.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    org: usize,
    p: f64,
    raw_mean: f64,
    clears: bool,
}

/// Pool-adjacent-violators: the best non-decreasing map of `x` to the share
/// of `y`, as (upper end of each block's x, its value).
fn isotonic(points: &mut [(f64, f64)]) -> Vec<(f64, f64)> {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Blocks of (x max, Σy, n).
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    for &(x, y) in points.iter() {
        blocks.push((x, y, 1.0));
        while blocks.len() >= 2 {
            let (b, a) = (blocks[blocks.len() - 1], blocks[blocks.len() - 2]);
            if a.1 / a.2 < b.1 / b.2 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (b.0, a.1 + b.1, a.2 + b.2);
        }
    }
    blocks.into_iter().map(|(x, s, n)| (x, s / n)).collect()
}

fn isotonic_at(map: &[(f64, f64)], x: f64) -> f64 {
    let i = map.partition_point(|b| b.0 < x).min(map.len().saturating_sub(1));
    map.get(i).map_or(0.5, |b| b.1)
}

fn brier(pairs: impl Iterator<Item = (f64, bool)>) -> f64 {
    let (mut total, mut n) = (0.0, 0.0f64);
    for (p, y) in pairs {
        total += (p - f64::from(u8::from(y))).powi(2);
        n += 1.0;
    }
    total / n.max(1.0)
}

/// Prints a reliability table over ten equal bins of the probability; returns
/// the largest |share − mean probability| over bins of at least `min` entries.
fn reliability_table(pairs: &[(f64, bool)], min: usize) -> f64 {
    let mut bins = [(0usize, 0.0f64, 0usize); 10];
    for &(p, y) in pairs {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += p;
        bins[b].2 += usize::from(y);
    }
    println!("  {:>9} {:>7} {:>8} {:>8} {:>7}", "bin", "n", "mean p", "share", "gap");
    let mut worst: f64 = 0.0;
    for (i, (n, sum, hits)) in bins.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let (mean, share) = (sum / *n as f64, *hits as f64 / *n as f64);
        let gap = share - mean;
        if *n >= min {
            worst = worst.max(gap.abs());
        }
        println!(
            "  {:>4.1}–{:<4.1} {n:>7} {mean:>8.3} {share:>8.3} {gap:>+7.3}{}",
            i as f64 / 10.0,
            (i + 1) as f64 / 10.0,
            if *n < min { "  (few)" } else { "" }
        );
    }
    worst
}

/// Fitted reference organisations of a scale.
fn organisations(orgs: usize, points: u8, interviews: usize) -> Vec<Org> {
    (0..orgs as u64)
        .map(|seed| {
            let mut spec = Spec::reference(1000 + seed);
            spec.points = points;
            spec.interviews_per_candidate = interviews;
            let mut org = Org::generate(&spec);
            org.model.fit(500, 1e-6);
            org
        })
        .collect()
}

fn jobs(org: &Org) -> u32 {
    org.subject_job.iter().copied().max().map_or(0, |j| j + 1)
}

/// The subjects of a job in calibrated order with their distributions.
fn ranked(org: &Org, job: u32) -> Vec<(u32, f64, ScoreDistribution)> {
    let mut out: Vec<(u32, f64, ScoreDistribution)> = (0..org.subject_job.len() as u32)
        .filter(|&s| org.subject_job[s as usize] == job)
        .filter_map(|s| {
            let scores = ranking_scores(&org.model, s, &org.shape);
            Some((s, scores.overall?.mean, scores.overall_distribution?))
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

fn probabilities(orgs: &[Org], bar: f64) {
    let mut outcomes = Vec::new();
    for (o, org) in orgs.iter().enumerate() {
        for s in 0..org.subject_job.len() as u32 {
            let scores = ranking_scores(&org.model, s, &org.shape);
            let (Some(overall), Some(dist)) = (scores.overall, scores.overall_distribution) else { continue };
            // The overall score is over the assessed competencies: so is the truth it estimates.
            let truth = org.truth(s, &org.rated_items(s));
            outcomes.push(Outcome {
                org: o,
                p: dist.p_at_least(bar),
                raw_mean: overall.raw_mean,
                clears: truth >= bar,
            });
        }
    }
    let pairs: Vec<(f64, bool)> = outcomes.iter().map(|x| (x.p, x.clears)).collect();
    let share = pairs.iter().filter(|p| p.1).count() as f64 / pairs.len().max(1) as f64;
    println!();
    println!("### Bar {bar}: {} candidates, {:.1}% truly at or above it", pairs.len(), 100.0 * share);
    println!("p_above_bar reliability (in each bin of p, the share whose true score clears the bar):");
    let worst = reliability_table(&pairs, 100);
    // The raw mean's probability: the best monotone map of raw mean to
    // clearing, fitted on the other organisations.
    let raw_brier = brier((0..orgs.len()).flat_map(|o| {
        let mut training: Vec<(f64, f64)> =
            outcomes.iter().filter(|x| x.org != o).map(|x| (x.raw_mean, f64::from(u8::from(x.clears)))).collect();
        let map = isotonic(&mut training);
        outcomes.iter().filter(move |x| x.org == o).map(move |x| (isotonic_at(&map, x.raw_mean), x.clears))
    }));
    let ours = brier(pairs.iter().copied());
    println!(
        "largest bin gap (bins of ≥100): {worst:.3} (target ≤ 0.05); Brier: p_above_bar {ours:.4}, raw mean (monotone map from other organisations) {raw_brier:.4}, {}",
        if ours < raw_brier { "p_above_bar better" } else { "RAW MEAN BETTER" }
    );
}

/// Pairwise probabilities of candidates of one job, and tier boundaries.
fn pairwise(orgs: &[Org]) {
    let mut pairs = Vec::new();
    let (mut boundaries, mut boundary_right, mut tiers_per_job, mut jobs_seen) = (0usize, 0usize, 0usize, 0usize);
    let all: Vec<u32> = (0..10).collect();
    for org in orgs {
        for job in 0..jobs(org) {
            let r = ranked(org, job);
            let truth = |s: u32| org.truth(s, &org.rated_items(s));
            for i in 0..r.len() {
                for j in (i + 1)..r.len().min(i + 6) {
                    let p = decisions::p_above(&r[i].2, &r[j].2);
                    pairs.push((p, truth(r[i].0) > truth(r[j].0)));
                }
            }
            let distributions: Vec<ScoreDistribution> = r.iter().map(|x| x.2).collect();
            let tiers = decisions::tiers(&distributions);
            for i in 1..r.len() {
                if tiers[i] != tiers[i - 1] {
                    boundaries += 1;
                    boundary_right += usize::from(org.truth(r[i - 1].0, &all) > org.truth(r[i].0, &all));
                }
            }
            tiers_per_job += tiers.last().copied().unwrap_or(0) as usize;
            jobs_seen += 1;
        }
    }
    println!();
    println!(
        "P(row above column) reliability (pairs of candidates up to 5 places apart in a job's ranking; share truly in that order):"
    );
    let worst = reliability_table(&pairs, 100);
    println!(
        "largest bin gap: {worst:.3}; tiers per job of 50: {:.1}; at a tier boundary (P ≥ {TIER_CONFIDENCE}) the higher is truly above: {:.3} of {boundaries}",
        tiers_per_job as f64 / jobs_seen.max(1) as f64,
        boundary_right as f64 / boundaries.max(1) as f64
    );
}

/// Wrong side-of-the-bar decisions (deciding by p ≥ 0.5) against the true
/// overall over every competency, and over the competencies assessed.
fn wrong_decisions(org: &Org, bar: f64) -> (usize, usize) {
    let all: Vec<u32> = (0..10).collect();
    let (mut full, mut assessed) = (0, 0);
    for s in 0..org.subject_job.len() as u32 {
        let Some(dist) = ranking_scores(&org.model, s, &org.shape).overall_distribution else { continue };
        let advance = dist.p_at_least(bar) >= 0.5;
        full += usize::from(advance != (org.truth(s, &all) >= bar));
        assessed += usize::from(advance != (org.truth(s, &org.rated_items(s)) >= bar));
    }
    (full, assessed)
}

/// Extra interviews per job in the planning benchmark.
const SLOTS_PER_JOB: usize = 15;

fn planning(orgs: usize, points: u8, bar: f64) {
    let raters_per_org = Spec::reference(0).raters.len();
    let max_per_rater = (2 * SLOTS_PER_JOB).div_ceil(raters_per_org);
    let (mut cut_planned, mut cut_random, mut cut_planned_assessed, mut cut_random_assessed) = (0.0, 0.0, 0.0, 0.0);
    let (mut before_total, mut expected_before, mut expected_after, mut spent) = (0usize, 0.0, 0.0, 0usize);
    const RANDOM_REPLICATES: u64 = 3;
    for (o, base) in organisations(orgs, points, 2).into_iter().enumerate() {
        let (before, before_assessed) = wrong_decisions(&base, bar);
        before_total += before;
        // Planned: each job's plan under the fitted model, then carried out.
        let mut planned = base.clone();
        let mut rng = Rng::new(77 + o as u64);
        let mut per_job_spent = Vec::new();
        let plans: Vec<_> = (0..jobs(&base))
            .map(|job| {
                let subjects: Vec<u32> =
                    (0..base.subject_job.len() as u32).filter(|&s| base.subject_job[s as usize] == job).collect();
                decisions::plan(
                    &base.model,
                    &PlanRequest {
                        shape: &base.shape,
                        bar,
                        subjects,
                        raters: (0..raters_per_org as u32).map(Some).collect(),
                        slots: SLOTS_PER_JOB,
                        max_per_rater,
                        focus: 4,
                    },
                )
            })
            .collect();
        for plan in &plans {
            expected_before += plan.wrong_before;
            expected_after += plan.wrong_after;
            per_job_spent.push(plan.interviews.len());
            for i in &plan.interviews {
                planned.interview(&mut rng, i.subject, i.rater as u32, &i.items);
            }
        }
        spent += per_job_spent.iter().sum::<usize>();
        planned.model.fit(500, 1e-6);
        let (after, after_assessed) = wrong_decisions(&planned, bar);
        cut_planned += before as f64 - after as f64;
        cut_planned_assessed += before_assessed as f64 - after_assessed as f64;
        // At random: as many interviews per job, random candidates and
        // interviewers (never one already on the panel), 3–5 random competencies.
        for replicate in 0..RANDOM_REPLICATES {
            let mut random = base.clone();
            let mut rng = Rng::new(1_000_003 * (replicate + 1) + o as u64);
            for (job, &n) in per_job_spent.iter().enumerate() {
                let subjects: Vec<u32> = (0..base.subject_job.len() as u32)
                    .filter(|&s| base.subject_job[s as usize] == job as u32)
                    .collect();
                let mut done = 0;
                while done < n {
                    let s = subjects[rng.below(subjects.len())];
                    let r = rng.below(raters_per_org) as u32;
                    if random.model.ratings(s).iter().any(|x| x.rater == r) {
                        continue;
                    }
                    let k = 3 + rng.below(3);
                    let mut focus: Vec<u32> = Vec::new();
                    while focus.len() < k {
                        let item = rng.below(10) as u32;
                        if !focus.contains(&item) {
                            focus.push(item);
                        }
                    }
                    random.interview(&mut rng, s, r, &focus);
                    done += 1;
                }
            }
            random.model.fit(500, 1e-6);
            let (after, after_assessed) = wrong_decisions(&random, bar);
            cut_random += (before as f64 - after as f64) / RANDOM_REPLICATES as f64;
            cut_random_assessed += (before_assessed as f64 - after_assessed as f64) / RANDOM_REPLICATES as f64;
        }
    }
    let n = orgs.max(1) as f64;
    println!();
    println!(
        "### Planning on 1..{points}, bar {bar}: {orgs} organisations, 2 interviews per candidate, up to {SLOTS_PER_JOB} more per job of 50 (spent {:.1} per job), at most {max_per_rater} per interviewer per job",
        spent as f64 / n / 6.0
    );
    println!(
        "wrong decisions per organisation before: {:.2} (the model expected {:.2}); cut by planned interviews {:.2}, by random ones {:.2}: planned / random {:.2} (target ≥ 1.30)",
        before_total as f64 / n,
        expected_before / n,
        cut_planned / n,
        cut_random / n,
        cut_planned / cut_random.max(1e-9)
    );
    println!(
        "  against the truth of the assessed competencies only: cut by planned {:.2}, by random {:.2}: {:.2}; the plan expected to cut {:.2}",
        cut_planned_assessed / n,
        cut_random_assessed / n,
        cut_planned_assessed / cut_random_assessed.max(1e-9),
        (expected_before - expected_after) / n
    );
}

/// Bars of the benchmark for a scale: the middle and a point above it.
fn bars(points: u8) -> [f64; 2] {
    let middle = (1.0 + f64::from(points)) / 2.0;
    [middle, middle + 0.5]
}

pub fn run(orgs: usize, plan_orgs: usize, points: &[u8]) {
    println!("# scorecard decisions benchmark");
    for &points in points {
        println!();
        println!(
            "## 1..{points}: {orgs} reference organisations (300 candidates × 5 interviews, 36 raters, 12 planted)"
        );
        let fitted = organisations(orgs, points, 5);
        for bar in bars(points) {
            probabilities(&fitted, bar);
        }
        pairwise(&fitted);
        drop(fitted);
        if plan_orgs > 0 {
            planning(plan_orgs, points, bars(points)[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_regression_pools_violators() {
        let mut points = vec![(1.0, 0.0), (2.0, 1.0), (3.0, 0.0), (4.0, 1.0)];
        let map = isotonic(&mut points);
        assert_eq!(map, vec![(1.0, 0.0), (3.0, 0.5), (4.0, 1.0)]);
        assert_eq!(isotonic_at(&map, 2.5), 0.5);
        assert_eq!(isotonic_at(&map, 9.0), 1.0);
    }

    #[test]
    fn p_above_bar_is_calibrated_on_reference_organisations() {
        // A short run of the benchmark: a floor a regression must not cross.
        let orgs = organisations(3, 5, 5);
        let (mut total, mut n, mut hits, mut p_sum) = (0.0, 0.0, 0.0, 0.0);
        for org in &orgs {
            for s in 0..org.subject_job.len() as u32 {
                let Some(d) = ranking_scores(&org.model, s, &org.shape).overall_distribution else { continue };
                let p = d.p_at_least(3.5);
                let y = f64::from(u8::from(org.truth(s, &org.rated_items(s)) >= 3.5));
                total += (p - y).powi(2);
                n += 1.0;
                hits += y;
                p_sum += p;
            }
        }
        let brier = total / n;
        assert!(brier < 0.1, "Brier {brier}");
        assert!((hits / n - p_sum / n).abs() < 0.05, "mean p {} against the share {}", p_sum / n, hits / n);
    }
}

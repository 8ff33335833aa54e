//! Differential rater functioning (Engelhard 1994; the bias/interaction
//! analysis of Linacre's Facets): does an interviewer score candidates of one
//! self-identified category differently from how the panel sees them, compared
//! with candidates of the organisation's largest category?
//!
//! This reads the fitted model and never writes to it: the categories are an
//! input of this measurement only, never of the model, a score, a ranking or a
//! rater report (docs/compliance.md). Categories arrive as opaque small
//! numbers; the API names them.
//!
//! Each rating of rater `r` about candidate `c` is set against what the rater
//! would be expected to give on the panel's view of `c` without `r`
//! (`μ_k + s_r + λ_r θ_k^(−r)`, the leave-one-rater-out posterior the rater
//! flags use). For each category, the rater's shift δ is the latent offset
//! that best explains their ratings of that category's candidates under the
//! model's own cumulative-probit likelihood (on the latent scale, so the ends
//! of the scale do not shrink it: a harsh 1 on a weak candidate still counts).
//! The differential is the shift for a category less the shift for the
//! reference category: the rater's own severity cancels, what remains is how
//! differently they score the two groups. Its variance is clustered by
//! scorecard (ratings on one scorecard share an occasion), its 90% interval
//! Welch's t with scorecards as the units, and the p-values of every rater and
//! comparison of the organisation go through Benjamini–Hochberg together.

use super::model::{Model, PanelViews, ln_gamma};
use super::raters::{ScorecardFacts, Thresholds};

/// One comparison of a rater's scorecards about a category with those about
/// the reference category, in scale points of the scales the rater used.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub category: u8,
    pub reference: u8,
    pub scorecards: u32,
    pub reference_scorecards: u32,
    /// Mean residual for `category` less that for `reference` (− = scores the
    /// category lower than the panel does, relative to the reference).
    pub difference: f64,
    pub lower: f64,
    pub upper: f64,
    /// Two-sided p-value of "no difference" (Welch's t).
    pub p_value: f64,
    /// `max − min` of the scales the figures are in (the scorecards' mean).
    pub scale_span: f64,
    /// Benjamini–Hochberg adjusted p-value over every comparison of the organisation.
    pub q_value: f64,
    pub flagged: bool,
}

/// One rater's comparisons, in category order; only categories with at least
/// `differential_min_scorecards` scorecards on both sides are compared, so
/// that no comparison stands for a handful of identifiable candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct RaterDifferential {
    pub rater: u32,
    pub comparisons: Vec<Comparison>,
}

impl RaterDifferential {
    pub fn flagged(&self) -> bool {
        self.comparisons.iter().any(|c| c.flagged)
    }
}

/// The reference category: the one with most subjects that have a scorecard
/// (the lowest number on a tie); `None` when no subject's category is known.
pub fn reference_category(categories: &[Option<u8>], scorecards: &[ScorecardFacts]) -> Option<u8> {
    let mut seen = vec![false; categories.len()];
    let mut counts = [0usize; 256];
    for s in scorecards {
        let subject = s.subject as usize;
        if let Some(Some(category)) = categories.get(subject)
            && !std::mem::replace(&mut seen[subject], true)
        {
            counts[usize::from(*category)] += 1;
        }
    }
    let (best, count) = counts.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?;
    (*count > 0).then_some(best as u8)
}

/// Rounds of the joint estimation at most; the corrections are small next
/// to the shifts, so it settles in two or three.
const MAX_ROUNDS: usize = 4;
/// The joint estimation has settled when no rater's correction moves by more
/// than this (0..1 units of the scale).
const SETTLED: f64 = 5e-4;

/// Every rater's differentials. `categories[subject]` is the subject's
/// category under one grouping (`None`: unknown, not compared). Takes the
/// model by value because it works on the raters' severities (a copy: the
/// caller's model is never touched).
///
/// The rater differentials are estimated jointly. Measured against the plain
/// leave-one-rater-out view, a rater who scores women lower also pulls down the
/// panel's view of every woman they interviewed, and the *other* raters on
/// those panels then look lenient on women: innocent colleagues of a biased
/// interviewer would be flagged for the opposite bias. Two things undo that.
/// The shifts of each category are centred on the median rater's, not on the
/// (biased) panel's: the pull every colleague shares goes, and a differential
/// says how a rater differs from the organisation's typical interviewer (a
/// bias every interviewer shares is no rater's differential; the
/// adverse-impact report is where it shows). And the estimation goes round:
/// each rater's centred shifts, shrunk by their own uncertainty (empirical
/// Bayes), correct that rater's ratings wherever they enter someone else's
/// panel view, and the shifts are estimated again until nothing moves, which
/// takes out the part of the pull that falls unevenly (on the colleagues who
/// sat on most panels with the biased interviewer).
pub fn differentials(
    mut model: Model,
    scorecards: &[ScorecardFacts],
    categories: &[Option<u8>],
    t: &Thresholds,
) -> Vec<RaterDifferential> {
    let Some(reference) = reference_category(categories, scorecards) else { return Vec::new() };
    let raters = model.rater_count();
    let category_count = categories.iter().flatten().map(|&c| usize::from(c) + 1).max().unwrap_or(0);
    let mut span_of: std::collections::HashMap<(u32, u32), f64> = std::collections::HashMap::new();
    for s in scorecards {
        span_of.insert((s.rater, s.subject), s.scale_span);
    }
    let mut by_category: Vec<Vec<u32>> = vec![Vec::new(); category_count];
    for (subject, category) in categories.iter().enumerate().take(model.subject_count()) {
        if let Some(category) = category {
            by_category[usize::from(*category)].push(subject as u32);
        }
    }
    let severity = model.severity.clone();
    // correction[category][rater]: the rater's centred, shrunk shift on that
    // category, taken off their ratings wherever they inform another's view.
    let mut correction = vec![vec![0.0; raters]; category_count];
    let mut shifts: Vec<Vec<Option<Shift>>> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        shifts = vec![vec![None; category_count]; raters];
        for (category, subjects) in by_category.iter().enumerate() {
            for (r, s) in model.severity.iter_mut().enumerate() {
                *s = severity[r] + correction[category][r];
            }
            let points = panel_points(&model, &severity, subjects, &span_of);
            for (r, p) in points.into_iter().enumerate() {
                shifts[r][category] = Shift::estimate(&p);
            }
        }
        let mut moved: f64 = 0.0;
        for (category, correction) in correction.iter_mut().enumerate() {
            let estimates: Vec<(usize, &Shift)> =
                shifts.iter().enumerate().filter_map(|(r, s)| s[category].as_ref().map(|s| (r, s))).collect();
            let centre = median(estimates.iter().map(|(_, s)| s.value).collect());
            // Between-rater variance of the true shifts, by moments (what the
            // spread of the estimates holds beyond their own noise).
            let n = estimates.len().max(1) as f64;
            let spread = estimates.iter().map(|(_, s)| (s.value - centre).powi(2)).sum::<f64>() / n;
            let noise = estimates.iter().map(|(_, s)| s.variance).sum::<f64>() / n;
            let between = (spread - noise).max(1e-6);
            for (r, s) in estimates {
                let shrunk = (s.value - centre) * between / (between + s.variance);
                moved = moved.max((shrunk - correction[r]).abs());
                correction[r] = shrunk;
            }
        }
        if moved < SETTLED {
            break;
        }
    }
    // What the differences are measured from: the median rater of each category.
    let centres: Vec<f64> = (0..category_count)
        .map(|category| median(shifts.iter().filter_map(|s| s[category].as_ref().map(|s| s.value)).collect()))
        .collect();

    let min = t.differential_min_scorecards.max(2) as usize;
    let mut out: Vec<RaterDifferential> = Vec::new();
    for (r, per_category) in shifts.iter().enumerate() {
        let mut comparisons = Vec::new();
        for (category, shift) in per_category.iter().enumerate() {
            if category == usize::from(reference) {
                continue;
            }
            let (Some(shift), Some(base)) = (shift, per_category[usize::from(reference)].as_ref()) else { continue };
            if shift.scorecards < min || base.scorecards < min {
                continue;
            }
            let difference = (shift.value - centres[category]) - (base.value - centres[usize::from(reference)]);
            let se2 = (shift.variance + base.variance).max(1e-12);
            let se = se2.sqrt();
            // Welch–Satterthwaite degrees of freedom, scorecards the units.
            let (n1, n0) = (shift.scorecards as f64, base.scorecards as f64);
            let df = se2 * se2 / (shift.variance.powi(2) / (n1 - 1.0) + base.variance.powi(2) / (n0 - 1.0)).max(1e-300);
            let df = df.clamp(1.0, n1 + n0 - 2.0);
            let half = student_t_quantile(0.95, df) * se;
            let p_value = (2.0 * student_t_sf(difference.abs() / se, df)).min(1.0);
            let span = (shift.span * n1 + base.span * n0) / (n1 + n0);
            comparisons.push(Comparison {
                category: category as u8,
                reference,
                scorecards: shift.scorecards as u32,
                reference_scorecards: base.scorecards as u32,
                difference: difference * span,
                lower: (difference - half) * span,
                upper: (difference + half) * span,
                p_value,
                scale_span: span,
                q_value: 1.0,
                flagged: false,
            });
        }
        if !comparisons.is_empty() {
            out.push(RaterDifferential { rater: r as u32, comparisons });
        }
    }

    // Benjamini–Hochberg over every comparison of the organisation.
    let mut all: Vec<(usize, usize, f64)> = Vec::new();
    for (i, d) in out.iter().enumerate() {
        for (j, c) in d.comparisons.iter().enumerate() {
            all.push((i, j, c.p_value));
        }
    }
    let q = benjamini_hochberg(&all.iter().map(|a| a.2).collect::<Vec<_>>());
    for ((i, j, _), q) in all.into_iter().zip(q) {
        let c = &mut out[i].comparisons[j];
        c.q_value = q;
        // The threshold is a share of the scale's span, like every calibration threshold.
        c.flagged = q <= t.differential_fdr && c.difference.abs() > t.differential * c.scale_span;
    }
    out
}

/// Each rating about `subjects` (all of one category), per rater, against
/// what the rater would give on the panel's view without them. The model's
/// severities carry the other raters' corrections for this category;
/// `severity` holds the fitted ones, which set the rater's own expectation.
fn panel_points(
    model: &Model,
    severity: &[f64],
    subjects: &[u32],
    span_of: &std::collections::HashMap<(u32, u32), f64>,
) -> Vec<Vec<Point>> {
    let mut points: Vec<Vec<Point>> = vec![Vec::new(); model.rater_count()];
    let mut views = PanelViews::default();
    for &c in subjects {
        model.for_each_panel_view_into(c, &mut views, |r, post| {
            if post.items.is_empty() {
                return; // nobody else rated this candidate: no panel view
            }
            let range = model.range[r as usize];
            // The rater's latent spread around their expectation: noise and occasion.
            let own_var = model.noise_var[r as usize] + model.occasion_spread.get(r as usize).copied().unwrap_or(0.0);
            let span = span_of.get(&(r, c)).copied().unwrap_or(1.0);
            for o in model.ratings(c).iter().filter(|o| o.rater == r) {
                let (theta, theta_var) = post.level(model, o.item);
                points[r as usize].push(Point {
                    value: o.value(),
                    steps: model.item_steps(o.item),
                    expected: model.item_mean[o.item as usize] + severity[r as usize] + range * theta,
                    sd: (own_var + range * range * theta_var).max(1e-8).sqrt(),
                    scorecard: o.scorecard,
                    span,
                });
            }
        });
    }
    points
}

/// The median (0 for none).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { 0.5 * (values[n / 2 - 1] + values[n / 2]) }
}

/// One rating of a rater about a candidate of one category, against what
/// the rater would give on the panel's view (0..1 units of its scale).
#[derive(Debug, Clone, Copy)]
struct Point {
    value: f64,
    /// Steps of the item's scale; 0 for a continuous item.
    steps: u32,
    /// `μ_k + s_r + λ_r θ_k^(−r)`.
    expected: f64,
    /// Spread of the rater's latent judgement around `expected`: their
    /// noise, their occasion spread and the panel view's own uncertainty.
    sd: f64,
    scorecard: u32,
    span: f64,
}

/// A rater's shift on one category's candidates: the δ that best explains
/// their ratings as `expected + δ` under the same cumulative-probit
/// likelihood the model fits (a latent shift, so the ends of the scale do not
/// shrink it), with a variance robust to the ratings of one scorecard being
/// correlated (the sandwich, clustered by scorecard).
#[derive(Debug, Clone)]
struct Shift {
    value: f64,
    variance: f64,
    scorecards: usize,
    span: f64,
}

impl Shift {
    /// Score and information of each point at shift δ.
    fn terms(p: &Point, delta: f64) -> (f64, f64) {
        let centre = p.expected + delta;
        if p.steps == 0 {
            return ((p.value - centre) / (p.sd * p.sd), 1.0 / (p.sd * p.sd));
        }
        let n = f64::from(p.steps);
        let k = (p.value * n).round();
        let lo = if k <= 0.0 { f64::NEG_INFINITY } else { ((k - 0.5) / n - centre) / p.sd };
        let hi = if k >= n { f64::INFINITY } else { ((k + 0.5) / n - centre) / p.sd };
        let (mean, info) = super::normal::interval_moments(lo, hi);
        (mean / p.sd, info / (p.sd * p.sd))
    }

    fn estimate(points: &[Point]) -> Option<Shift> {
        if points.is_empty() {
            return None;
        }
        let mut delta = 0.0;
        // Newton on a concave log-likelihood; steps bounded to a tenth of the
        // scale so that a category rated only at an end cannot run away.
        for _ in 0..50 {
            let (score, info) =
                points.iter().map(|p| Self::terms(p, delta)).fold((0.0, 0.0), |a, t| (a.0 + t.0, a.1 + t.1));
            let step = (score / info.max(1e-12)).clamp(-0.1, 0.1);
            delta = (delta + step).clamp(-1.0, 1.0);
            if step.abs() < 1e-9 {
                break;
            }
        }
        let mut by_card: std::collections::BTreeMap<u32, f64> = std::collections::BTreeMap::new();
        let mut info = 0.0;
        for p in points {
            let (score, i) = Self::terms(p, delta);
            *by_card.entry(p.scorecard).or_default() += score;
            info += i;
        }
        let cards = by_card.len();
        if cards < 2 {
            return None;
        }
        let meat: f64 = by_card.values().map(|s| s * s).sum();
        // Small-sample correction of the clustered sandwich: G / (G − 1).
        let variance = meat / (info * info).max(1e-300) * cards as f64 / (cards as f64 - 1.0);
        let span = points.iter().map(|p| p.span).sum::<f64>() / points.len() as f64;
        Some(Shift { value: delta, variance, scorecards: cards, span })
    }
}

/// Benjamini–Hochberg adjusted p-values (the step-up procedure: a hypothesis
/// is rejected at false-discovery rate q exactly when its adjusted value ≤ q).
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![1.0; m];
    let mut running = 1.0_f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

/// Regularised incomplete beta I_x(a, b) (continued fraction, modified Lentz;
/// Numerical Recipes §6.4).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2).
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(b, a, 1.0 - x);
    }
    const TINY: f64 = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut f = d;
    for m in 1..300 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 + even * d;
        d = if d.abs() < TINY { 1.0 / TINY } else { 1.0 / d };
        c = 1.0 + even / c;
        if c.abs() < TINY {
            c = TINY;
        }
        f *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 + odd * d;
        d = if d.abs() < TINY { 1.0 / TINY } else { 1.0 / d };
        c = 1.0 + odd / c;
        if c.abs() < TINY {
            c = TINY;
        }
        let step = d * c;
        f *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * f / a
}

/// P(T > t) for Student's t with `df` degrees of freedom, t ≥ 0.
pub fn student_t_sf(t: f64, df: f64) -> f64 {
    0.5 * incomplete_beta(0.5 * df, 0.5, df / (df + t * t))
}

/// The `p` quantile (p ≥ 0.5) of Student's t with `df` degrees of freedom:
/// bisection on the survival function, to 1e-12.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    let target = 1.0 - p;
    let (mut lo, mut hi) = (0.0, 1.0);
    while student_t_sf(hi, df) > target {
        hi *= 2.0;
    }
    while hi - lo > 1e-12 {
        let mid = 0.5 * (lo + hi);
        if student_t_sf(mid, df) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::synthetic::{GroupBias, Org, Spec};

    #[test]
    fn student_t_matches_r() {
        // qt(0.95, df) and pt(t, df, lower.tail = FALSE) in R 4.
        for (df, q) in [(1.0, 6.313_751_515), (5.0, 2.015_048_373), (10.0, 1.812_461_123), (30.0, 1.697_260_887)] {
            assert!((student_t_quantile(0.95, df) - q).abs() < 1e-8, "qt(0.95, {df})");
        }
        assert!((student_t_sf(2.0, 3.0) - 0.069_662_984).abs() < 1e-8);
        assert!((student_t_sf(0.0, 7.0) - 0.5).abs() < 1e-12);
        // Far out, the normal's tail: pt(1.6448536, 1e6) ≈ 0.05.
        assert!((student_t_sf(1.644_853_6, 1e6) - 0.05).abs() < 1e-6);
    }

    #[test]
    fn benjamini_hochberg_matches_p_adjust() {
        // p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH") = 0.02 0.04 0.04 0.02
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]);
        for (got, want) in q.iter().zip([0.02, 0.04, 0.04, 0.02]) {
            assert!((got - want).abs() < 1e-12, "{q:?}");
        }
        // p.adjust(c(0.5, 0.9, 0.001), "BH") = 0.75 0.90 0.003
        let q = benjamini_hochberg(&[0.5, 0.9, 0.001]);
        for (got, want) in q.iter().zip([0.75, 0.9, 0.003]) {
            assert!((got - want).abs() < 1e-12, "{q:?}");
        }
        assert!(benjamini_hochberg(&[]).is_empty());
    }

    fn biased_org(seed: u64, shift: f64) -> Org {
        let mut spec = Spec::reference(seed);
        spec.groups = Some(GroupBias { shares: vec![0.5, 0.48], against: 0, shift, raters: 2 });
        let mut org = Org::generate(&spec);
        org.model.fit(200, 1e-4);
        org
    }

    /// Two raters planted 1.2 points harsher on category 0 are flagged, with
    /// their difference near −1.2 inside its interval; nobody else is.
    #[test]
    fn planted_raters_are_found_and_measured() {
        let org = biased_org(11, -1.2);
        let found = differentials(org.model.clone(), &org.scorecards, &org.subject_category, &Thresholds::default());
        let flagged: Vec<u32> = found.iter().filter(|d| d.flagged()).map(|d| d.rater).collect();
        assert_eq!(flagged, org.biased_raters, "{found:#?}");
        for d in found.iter().filter(|d| org.biased_raters.contains(&d.rater)) {
            // The reference is the larger category, 0; the comparison is of 1
            // against it, so the planted harshness on 0 shows as +.
            let c = &d.comparisons[0];
            assert_eq!((c.category, c.reference), (1, 0));
            assert!(c.lower < c.difference && c.difference < c.upper);
            assert!((0.6..1.8).contains(&c.difference), "{c:?}");
            assert!(c.q_value < 0.01);
        }
    }

    /// A biased rater pulls the panel's view of the candidates they
    /// interviewed; measured against that view, their colleagues on those
    /// panels would seem biased the other way. The joint estimation takes the
    /// biased rater's shift out of their colleagues' panel views.
    #[test]
    fn colleagues_of_a_biased_rater_are_not_pushed_the_other_way() {
        // A small pool, so that every interviewer shares many panels with the biased one.
        let mut spec = Spec::reference(14);
        spec.raters = vec![crate::calibration::synthetic::RaterKind::Normal; 8];
        spec.groups = Some(GroupBias { shares: vec![0.5, 0.5], against: 0, shift: -1.2, raters: 1 });
        let mut org = Org::generate(&spec);
        org.model.fit(200, 1e-4);
        let found = differentials(org.model.clone(), &org.scorecards, &org.subject_category, &Thresholds::default());
        let biased: std::collections::HashSet<u32> = org.biased_raters.iter().copied().collect();
        // Colleagues: raters who shared a candidate of the planted category with a biased rater.
        let mut colleagues = std::collections::HashSet::new();
        for c in 0..org.model.subject_count() as u32 {
            let raters: Vec<u32> = org.model.ratings(c).iter().map(|o| o.rater).collect();
            if org.subject_category[c as usize] == Some(0) && raters.iter().any(|r| biased.contains(r)) {
                colleagues.extend(raters.into_iter().filter(|r| !biased.contains(r)));
            }
        }
        let shifts: Vec<f64> =
            found.iter().filter(|d| colleagues.contains(&d.rater)).map(|d| d.comparisons[0].difference).collect();
        assert!(shifts.len() >= 6, "{} colleagues compared", shifts.len());
        let mean = shifts.iter().sum::<f64>() / shifts.len() as f64;
        assert!(mean.abs() < 0.06, "colleagues' mean difference {mean:+.3} points");
    }

    /// Without a planted bias, the categories are noise to the rater
    /// differentials: no flags, and the comparisons' p-values spread out.
    #[test]
    fn no_bias_no_flags() {
        let org = biased_org(12, 0.0);
        let found = differentials(org.model.clone(), &org.scorecards, &org.subject_category, &Thresholds::default());
        assert!(found.len() > 20, "most raters are compared");
        assert!(found.iter().all(|d| !d.flagged()), "{found:#?}");
        let small = found.iter().filter(|d| d.comparisons[0].p_value < 0.1).count();
        assert!(small <= found.len() / 4, "{small} of {} raters below p = 0.1", found.len());
    }

    #[test]
    fn without_known_categories_nothing_is_compared() {
        let org = biased_org(13, 0.0);
        let unknown = vec![None; org.subject_category.len()];
        assert!(differentials(org.model.clone(), &org.scorecards, &unknown, &Thresholds::default()).is_empty());
        assert_eq!(reference_category(&org.subject_category, &org.scorecards), Some(0));
    }
}

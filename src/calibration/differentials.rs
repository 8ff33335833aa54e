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

use super::model::{Model, ln_gamma};
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

/// Every rater's differentials. `categories[subject]` is the subject's
/// category under one grouping (`None`: unknown, not compared).
pub fn differentials(
    model: &Model,
    scorecards: &[ScorecardFacts],
    categories: &[Option<u8>],
    t: &Thresholds,
) -> Vec<RaterDifferential> {
    let Some(reference) = reference_category(categories, scorecards) else { return Vec::new() };
    let raters = model.rater_count();
    let mut span_of: std::collections::HashMap<(u32, u32), f64> = std::collections::HashMap::new();
    for s in scorecards {
        span_of.insert((s.rater, s.subject), s.scale_span);
    }
    // Per rater and category: each rating against the panel's view.
    let mut points: Vec<Vec<Vec<Point>>> = vec![Vec::new(); raters];
    for r in 0..raters as u32 {
        let (severity, range) = (model.severity[r as usize], model.range[r as usize]);
        // The rater's latent spread around their expectation: noise and occasion.
        let own_var = model.noise_var[r as usize] + model.occasion_spread.get(r as usize).copied().unwrap_or(0.0);
        for &c in model.rated_by(r) {
            let Some(Some(category)) = categories.get(c as usize).copied() else { continue };
            let post = model.posterior(c, Some(r));
            if post.items.is_empty() {
                continue; // nobody else rated this candidate: no panel view
            }
            let span = span_of.get(&(r, c)).copied().unwrap_or(1.0);
            let per_category = &mut points[r as usize];
            if per_category.len() <= usize::from(category) {
                per_category.resize(usize::from(category) + 1, Vec::new());
            }
            for o in model.ratings(c).iter().filter(|o| o.rater == r) {
                let (theta, theta_var) = match post.item(o.item) {
                    Some(p) => (p.theta, 1.0 / p.d + p.u * p.u / post.s),
                    None => (post.ability, model.hyper.specific + 1.0 / post.s),
                };
                per_category[usize::from(category)].push(Point {
                    value: o.value(),
                    steps: model.item_steps(o.item),
                    expected: model.item_mean[o.item as usize] + severity + range * theta,
                    sd: (own_var + range * range * theta_var).max(1e-8).sqrt(),
                    scorecard: o.scorecard,
                    span,
                });
            }
        }
    }

    let min = t.differential_min_scorecards.max(2) as usize;
    let mut out: Vec<RaterDifferential> = Vec::new();
    for (r, per_category) in points.iter().enumerate() {
        let reference_shift = per_category.get(usize::from(reference)).and_then(|p| Shift::estimate(p));
        let mut comparisons = Vec::new();
        for (category, cards) in per_category.iter().enumerate() {
            if category == usize::from(reference) {
                continue;
            }
            let (Some(shift), Some(base)) = (Shift::estimate(cards), reference_shift.as_ref()) else { continue };
            if shift.scorecards < min || base.scorecards < min {
                continue;
            }
            let difference = shift.value - base.value;
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
        let found = differentials(&org.model, &org.scorecards, &org.subject_category, &Thresholds::default());
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

    /// Without a planted bias, the categories are noise to the rater
    /// differentials: no flags, and the comparisons' p-values spread out.
    #[test]
    fn no_bias_no_flags() {
        let org = biased_org(12, 0.0);
        let found = differentials(&org.model, &org.scorecards, &org.subject_category, &Thresholds::default());
        assert!(found.len() > 20, "most raters are compared");
        assert!(found.iter().all(|d| !d.flagged()), "{found:#?}");
        let small = found.iter().filter(|d| d.comparisons[0].p_value < 0.1).count();
        assert!(small <= found.len() / 4, "{small} of {} raters below p = 0.1", found.len());
    }

    #[test]
    fn without_known_categories_nothing_is_compared() {
        let org = biased_org(13, 0.0);
        let unknown = vec![None; org.subject_category.len()];
        assert!(differentials(&org.model, &org.scorecards, &unknown, &Thresholds::default()).is_empty());
        assert_eq!(reference_category(&org.subject_category, &org.scorecards), Some(0));
    }
}

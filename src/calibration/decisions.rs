//! What a recruiter decides with: the probability that a candidate clears a
//! hiring bar, the probability that one candidate is truly above another,
//! tiers of candidates the evidence cannot yet tell apart, and a plan of the
//! next interviews that would settle the most undecided side-of-the-bar
//! decisions (value of information under the fitted model).
//!
//! Every probability is read from the same posterior the 90% intervals come
//! from: a candidate's overall score has a quantile function along the path
//! through their posterior on which the composite moves most (see
//! `scores::CompositePath`); its ±z90 points are the interval, and the whole
//! path is the distribution. Candidates are taken as independent given the
//! raters' fitted parameters (what they share through a common interviewer is
//! left out: docs/calibration.md says what that costs).

use super::model::{ItemPosterior, Model, NO_GROUP, SubjectPosterior};
use super::normal;
use super::scores::RubricShape;

/// The z values at which a score distribution keeps its quantiles.
pub const QUANTILE_GRID: [f64; 13] = [-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0];

/// Probability that the higher of two consecutive candidates is truly above
/// the lower at or beyond which they are in different tiers.
pub const TIER_CONFIDENCE: f64 = 0.9;

/// A calibrated score's posterior distribution on the rubric's scale, by its
/// quantiles at [`QUANTILE_GRID`]: piecewise linear in between, extended
/// linearly beyond ±3 (0.27% of the mass).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreDistribution {
    quantiles: [f32; QUANTILE_GRID.len()],
}

impl ScoreDistribution {
    /// From quantiles at [`QUANTILE_GRID`] (made non-decreasing).
    pub fn from_quantiles(q: [f64; QUANTILE_GRID.len()]) -> Self {
        let mut quantiles = q.map(|x| x as f32);
        for i in 1..quantiles.len() {
            quantiles[i] = quantiles[i].max(quantiles[i - 1]);
        }
        ScoreDistribution { quantiles }
    }

    fn q(&self, i: usize) -> f64 {
        f64::from(self.quantiles[i])
    }

    /// The score's z-quantile.
    pub fn quantile(&self, z: f64) -> f64 {
        let n = QUANTILE_GRID.len();
        let step = QUANTILE_GRID[1] - QUANTILE_GRID[0];
        let at = ((z - QUANTILE_GRID[0]) / step).clamp(0.0, (n - 1) as f64);
        let i = (at.floor() as usize).min(n - 2);
        let (z0, q0, q1) = (QUANTILE_GRID[i], self.q(i), self.q(i + 1));
        q0 + (q1 - q0) * (z - z0) / step
    }

    /// z such that the score's z-quantile is `x` (±∞ beyond a flat end).
    fn z_of(&self, x: f64) -> f64 {
        let n = QUANTILE_GRID.len();
        let step = QUANTILE_GRID[1] - QUANTILE_GRID[0];
        // The segment holding x: the last i with q(i) ≤ x (extrapolating at the ends).
        let i = match self.quantiles.partition_point(|q| f64::from(*q) <= x) {
            0 => 0,
            p => (p - 1).min(n - 2),
        };
        let (q0, q1) = (self.q(i), self.q(i + 1));
        if q1 > q0 {
            return QUANTILE_GRID[i] + step * (x - q0) / (q1 - q0);
        }
        // A flat segment: every z on it gives x.
        if x > q1 {
            f64::INFINITY
        } else if x < q0 {
            f64::NEG_INFINITY
        } else {
            QUANTILE_GRID[i] + step / 2.0
        }
    }

    /// P(score ≤ x).
    pub fn cdf(&self, x: f64) -> f64 {
        let z = self.z_of(x);
        if z.is_finite() {
            normal::cdf(z)
        } else if z > 0.0 {
            1.0
        } else {
            0.0
        }
    }

    /// Posterior probability that the score is at or above `bar`.
    pub fn p_at_least(&self, bar: f64) -> f64 {
        (1.0 - self.cdf(bar)).clamp(0.0, 1.0)
    }
}

/// Midpoints and masses of the standard normal on a fine grid over ±4.5, for
/// integrals against a candidate's distribution.
fn normal_cells() -> impl Iterator<Item = (f64, f64)> {
    const CELLS: usize = 90;
    let (from, to) = (-4.5, 4.5);
    let width = (to - from) / CELLS as f64;
    (0..CELLS).map(move |i| {
        let lo = from + width * i as f64;
        (lo + width / 2.0, normal::cdf(lo + width) - normal::cdf(lo))
    })
}

/// P(a's score > b's score) for independent posteriors: ∫ P(b < a's
/// z-quantile) dΦ(z), made exactly complementary (p(a, b) + p(b, a) = 1).
pub fn p_above(a: &ScoreDistribution, b: &ScoreDistribution) -> f64 {
    let one_way = |x: &ScoreDistribution, y: &ScoreDistribution| -> f64 {
        let (mut total, mut mass) = (0.0, 0.0);
        for (z, m) in normal_cells() {
            total += m * y.cdf(x.quantile(z));
            mass += m;
        }
        total / mass
    };
    (0.5 * (one_way(a, b) + 1.0 - one_way(b, a))).clamp(0.0, 1.0)
}

/// Whether `a` is truly above `b` with probability [`TIER_CONFIDENCE`] or
/// more. A Gaussian reading of the two (median, and half the spread between
/// the ±1σ quantiles) settles most pairs at a glance; only those it puts
/// anywhere near the line are integrated ([`p_above`]). Neighbours in a long
/// ranking are mostly close, so a job of 10,000 candidates costs about a
/// millisecond, not the 50 integrating every pair would.
pub fn separated(a: &ScoreDistribution, b: &ScoreDistribution) -> bool {
    let spread = |d: &ScoreDistribution| 0.5 * (d.quantile(1.0) - d.quantile(-1.0));
    let var = spread(a).powi(2) + spread(b).powi(2);
    let gap = a.quantile(0.0) - b.quantile(0.0);
    if var > 0.0 {
        let glance = normal::cdf(gap / var.sqrt());
        if glance < 0.7 {
            return false;
        }
        if glance > 0.995 {
            return true;
        }
    }
    p_above(a, b) >= TIER_CONFIDENCE
}

/// Tiers of a ranking given best first: 1 for the first, and a new tier
/// wherever the higher of two consecutive candidates is above the lower with
/// probability [`TIER_CONFIDENCE`] or more.
pub fn tiers(ranked: &[ScoreDistribution]) -> Vec<u32> {
    let mut out = Vec::with_capacity(ranked.len());
    let mut tier = 1;
    for (i, d) in ranked.iter().enumerate() {
        if i > 0 && separated(&ranked[i - 1], d) {
            tier += 1;
        }
        out.push(tier);
    }
    out
}

/// Expected wrong side-of-the-bar decisions of one candidate whose score is
/// N(m, v) against bar b, deciding by the more likely side.
fn wrong_now(m: f64, v: f64, b: f64) -> f64 {
    if v <= 0.0 {
        return 0.0;
    }
    let p = normal::cdf((m - b) / v.sqrt());
    p.min(1.0 - p)
}

/// Expected wrong decisions after evidence that brings the variance from `v0`
/// down to `v1`: the posterior mean then is N(m, v0 − v1) from here
/// (pre-posterior), and each outcome is decided by its more likely side.
fn wrong_after(m: f64, v0: f64, v1: f64, b: f64) -> f64 {
    let spread = (v0 - v1).max(0.0);
    if spread <= 0.0 {
        return wrong_now(m, v1, b);
    }
    let sd = spread.sqrt();
    let (mut total, mut mass) = (0.0, 0.0);
    for (z, w) in normal_cells() {
        total += w * wrong_now(m + z * sd, v1, b);
        mass += w;
    }
    total / mass
}

/// Fisher information of one ordinal rating about its latent mean, as a share
/// of a point observation's (1 on a continuous item): the rating says only
/// which half-step interval the judgement fell in, and near an end of the
/// scale (a ceiling) it says little.
fn ordinal_information_share(predicted: f64, steps: u32, sd: f64) -> f64 {
    if steps == 0 || sd <= 0.0 {
        return 1.0;
    }
    let n = f64::from(steps);
    let mut info = 0.0;
    for k in 0..=steps {
        let lo = if k == 0 { f64::NEG_INFINITY } else { ((f64::from(k) - 0.5) / n - predicted) / sd };
        let hi = if k == steps { f64::INFINITY } else { ((f64::from(k) + 0.5) / n - predicted) / sd };
        let p = (normal::cdf(hi) - normal::cdf(lo)).max(1e-300);
        let (f_lo, f_hi) =
            (if lo.is_finite() { normal::pdf(lo) } else { 0.0 }, if hi.is_finite() { normal::pdf(hi) } else { 0.0 });
        info += (f_lo - f_hi).powi(2) / p;
    }
    info.clamp(0.0, 1.0)
}

/// What the planner knows of an interviewer: the fitted parameters, or the
/// organisation's typical values for one who has never rated.
#[derive(Debug, Clone, Copy)]
struct RaterParams {
    model: Option<u32>,
    noise: f64,
    occasion: f64,
    range: f64,
    severity: f64,
    severity_var: f64,
}

impl RaterParams {
    fn of(model: &Model, rater: Option<u32>) -> RaterParams {
        match rater.filter(|r| (*r as usize) < model.rater_count()) {
            Some(r) => {
                let i = r as usize;
                RaterParams {
                    model: Some(r),
                    noise: model.noise_var[i],
                    occasion: model.occasion_spread[i],
                    range: model.range[i],
                    severity: model.severity[i],
                    severity_var: model.severity_var[i],
                }
            }
            None => RaterParams {
                model: None,
                noise: model.hyper.noise,
                occasion: model.hyper.occasion,
                range: 1.0,
                severity: 0.0,
                severity_var: model.hyper.severity,
            },
        }
    }
}

/// One candidate as the planner sees them: the posterior's item structure,
/// grown by the interviews planned so far.
#[derive(Debug, Clone)]
struct Prospect {
    subject: u32,
    /// Items with their precision W_k (rated items first, planned ones added).
    items: Vec<ItemPosterior>,
    /// The candidate's posterior now: the levels every plan is valued at.
    start: SubjectPosterior,
    /// Variance of the composite from the raters' own uncertainty (severities,
    /// range uses, occasions), at the start; it shrinks as evidence is added.
    parameter_var: f64,
    /// Raters already on the panel, or planned.
    panel: Vec<u32>,
}

/// A planned interview.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedInterview {
    pub subject: u32,
    /// Index into the request's `raters`.
    pub rater: usize,
    pub items: Vec<u32>,
    /// Expected wrong decisions it removes.
    pub expected_gain: f64,
    /// P(at or above the bar) before it.
    pub p_before: f64,
    /// Items of the focus not yet assessed.
    pub new_items: Vec<u32>,
}

/// The planner's question.
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    pub shape: &'a RubricShape,
    /// The bar on the rubric's scale.
    pub bar: f64,
    /// Candidates to plan for.
    pub subjects: Vec<u32>,
    /// Available interviewers: the model's rater, or `None` for one who has
    /// never rated (planned as a typical interviewer of the organisation).
    pub raters: Vec<Option<u32>>,
    pub slots: usize,
    pub max_per_rater: usize,
    /// Competencies an interview covers.
    pub focus: usize,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub interviews: Vec<PlannedInterview>,
    pub wrong_before: f64,
    pub wrong_after: f64,
}

impl Prospect {
    fn new(model: &Model, shape: &RubricShape, subject: u32) -> Prospect {
        let post = model.posterior(subject, None);
        let weights = shape.overall_weights(|k| post.item(k).is_some());
        let mut p = Prospect {
            subject,
            items: post.items.clone(),
            start: post.clone(),
            parameter_var: 0.0,
            panel: model.ratings(subject).iter().map(|o| o.rater).collect(),
        };
        p.panel.sort_unstable();
        p.panel.dedup();
        if !weights.is_empty() {
            let g = p.gradient(model, &weights);
            let posterior_var = p.variance(model, &g);
            // composite_with normalises the weights it is given: scale back.
            let sum_g: f64 = g.iter().map(|x| x.1).sum();
            if let Some((_, normalised)) = model.composite_with(subject, &post, &g) {
                p.parameter_var = (normalised * sum_g * sum_g - posterior_var).max(0.0);
            }
        }
        p
    }

    /// The item whose scale and mean stand for `item`: itself once anybody
    /// in the organisation has rated it; otherwise (a competency nobody has
    /// assessed yet, whose mean the fit could not learn) the candidate's first
    /// rated item, as a typical competency of the rubric.
    fn proxy(&self, model: &Model, item: u32) -> u32 {
        let known = model.item_mean.get(item as usize).is_some_and(|m| m.is_finite())
            && model.item_mean_var.get(item as usize).is_some_and(|v| v.is_finite() && *v > 0.0);
        if known { item } else { self.items.first().map_or(item, |i| i.item) }
    }

    fn level(&self, model: &Model, item: u32) -> f64 {
        let theta = self.start.level(model, item).0;
        model.item_mean.get(self.proxy(model, item) as usize).copied().filter(|m| m.is_finite()).unwrap_or(0.5) + theta
    }

    fn expected_score(&self, model: &Model, item: u32) -> f64 {
        model.expected_score(self.proxy(model, item), self.level(model, item))
    }

    fn expected_score_slope(&self, model: &Model, item: u32) -> f64 {
        model.expected_score_slope(self.proxy(model, item), self.level(model, item))
    }

    /// The composite's linearisation on 0..1 of the scale: weight × slope of
    /// the expected rating at the current level, per item.
    fn gradient(&self, model: &Model, weights: &[(u32, f64)]) -> Vec<(u32, f64)> {
        weights.iter().map(|&(k, w)| (k, w * self.expected_score_slope(model, k).max(1e-9))).collect()
    }

    /// The composite's mean on 0..1 of the scale.
    fn mean(&self, model: &Model, weights: &[(u32, f64)]) -> f64 {
        weights.iter().map(|&(k, w)| w * self.expected_score(model, k)).sum()
    }

    /// Posterior variance of Σ g_k θ_k given the candidate's (grown) item
    /// precisions; items never rated have their prior.
    fn variance(&self, model: &Model, g: &[(u32, f64)]) -> f64 {
        let mut precisions: Vec<(u32, f64)> = self.items.iter().map(|i| (i.item, i.precision)).collect();
        for &(k, _) in g {
            if !precisions.iter().any(|p| p.0 == k) {
                precisions.push((k, 0.0));
            }
        }
        let post = model.posterior_of_precisions(&precisions);
        post.linear(g.iter().filter_map(|&(k, gk)| precisions.iter().position(|p| p.0 == k).map(|i| (i, gk)))).var
    }

    fn rated(&self, k: u32) -> bool {
        self.items.iter().any(|i| i.item == k && i.precision > 0.0)
    }

    /// (mean, variance) of the overall score (0..1) over the rated items and
    /// `extra`, with the raters' parameter uncertainty scaled by how much the
    /// posterior has tightened since the start.
    fn composite(&self, model: &Model, shape: &RubricShape, extra: &[u32], start_var: f64) -> (f64, f64, f64) {
        let weights = shape.overall_weights(|k| self.rated(k) || extra.contains(&k));
        let g = self.gradient(model, &weights);
        let var = self.variance(model, &g);
        let parameter =
            if start_var > 0.0 { self.parameter_var * (var / start_var).min(1.0) } else { self.parameter_var };
        (self.mean(model, &weights), var + parameter, var)
    }

    /// The precision one rating by `rater` on `item` would add, on a scorecard
    /// of `focus` ratings. What a scorecard's ratings share (its occasion, the
    /// rater's severity as far as it is uncertain) does not average out over
    /// its ratings: counted once per rating times their number, it weighs on
    /// the composite as it should.
    fn added_precision(&self, model: &Model, rater: &RaterParams, item: u32, focus: usize) -> f64 {
        let RaterParams { noise, occasion, range, severity, severity_var, .. } = *rater;
        let proxy = self.proxy(model, item);
        let mean = model.item_mean.get(proxy as usize).copied().filter(|m| m.is_finite()).unwrap_or(0.5);
        let predicted = mean + severity + range * (self.level(model, item) - mean);
        let share = ordinal_information_share(predicted, model.item_steps(proxy), (noise + occasion).sqrt());
        let shared = focus as f64 * (occasion + severity_var);
        range * range * share / (noise + shared).max(1e-9)
    }

    fn add(&mut self, model: &Model, rater: &RaterParams, items: &[u32], focus: usize) {
        for &k in items {
            let w = self.added_precision(model, rater, k, focus);
            match self.items.iter_mut().find(|i| i.item == k) {
                Some(i) => i.precision += w,
                None => self.items.push(ItemPosterior {
                    item: k,
                    precision: w,
                    d: 0.0,
                    u: 0.0,
                    theta: self.start.level(model, k).0,
                    slot: NO_GROUP,
                }),
            }
        }
        if let Some(r) = rater.model {
            self.panel.push(r);
        }
    }
}

/// The best interview of `rater` for a candidate: its focus (the weighted
/// competencies where the composite is least known, unassessed ones first)
/// and the expected wrong decisions it removes.
fn best_interview(
    model: &Model,
    shape: &RubricShape,
    p: &Prospect,
    rater: &RaterParams,
    bar: f64,
    focus: usize,
    start_var: f64,
) -> (f64, Vec<u32>) {
    let prior_d = 1.0 / model.hyper.specific.max(1e-6);
    let mut candidates: Vec<(u32, f64)> = shape
        .dimensions
        .iter()
        .filter(|d| d.weight > 0.0)
        .flat_map(|d| d.items.iter().filter(|(_, w)| *w > 0.0).map(move |&(k, w)| (k, d.weight * w)))
        .map(|(k, w)| {
            let precision = p.items.iter().find(|i| i.item == k).map_or(0.0, |i| i.precision);
            (k, w / (prior_d + precision) * if p.rated(k) { 1.0 } else { 4.0 })
        })
        .collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let items: Vec<u32> = candidates.iter().take(focus.max(1)).map(|c| c.0).collect();
    let (m0, v0, _) = p.composite(model, shape, &items, start_var);
    let mut after = p.clone();
    after.add(model, rater, &items, items.len());
    let (_, v1, _) = after.composite(model, shape, &items, start_var);
    let gain = wrong_now(m0, v0, bar) - wrong_after(m0, v0, v1.min(v0), bar);
    (gain.max(0.0), items)
}

/// Plans up to `slots` interviews, greedily: each time the (candidate,
/// interviewer, focus) that removes the most expected wrong side-of-the-bar
/// decisions given those planned before it, no interviewer more than
/// `max_per_rater` times nor twice for one candidate, ties to the interviewer
/// with the fewest so far. The bar is on the rubric's scale.
pub fn plan(model: &Model, req: &PlanRequest<'_>) -> Plan {
    let shape = req.shape;
    let span = (shape.scale_max - shape.scale_min).max(f64::MIN_POSITIVE);
    let bar = (req.bar - shape.scale_min) / span;
    let mut prospects: Vec<Prospect> = req.subjects.iter().map(|&s| Prospect::new(model, shape, s)).collect();
    let start: Vec<f64> = prospects.iter().map(|p| p.composite(model, shape, &[], 0.0).2).collect();
    let wrong_before: f64 = prospects
        .iter()
        .map(|p| {
            let (m, v, _) = p.composite(model, shape, &[], 0.0);
            wrong_now(m, v, bar)
        })
        .sum();
    let raters: Vec<RaterParams> = req.raters.iter().map(|&r| RaterParams::of(model, r)).collect();
    let mut load = vec![0usize; raters.len()];
    // Per candidate: every available interviewer's best interview, best last.
    let options = |p: &Prospect, start_var: f64| -> Vec<(f64, usize, Vec<u32>)> {
        let mut o: Vec<(f64, usize, Vec<u32>)> = raters
            .iter()
            .enumerate()
            .filter(|(_, r)| r.model.is_none_or(|m| !p.panel.contains(&m)))
            .map(|(i, r)| {
                let (gain, items) = best_interview(model, shape, p, r, bar, req.focus, start_var);
                (gain, i, items)
            })
            .collect();
        o.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        o
    };
    let mut lists: Vec<Vec<(f64, usize, Vec<u32>)>> =
        prospects.iter().zip(&start).map(|(p, &v)| options(p, v)).collect();
    let mut interviews = Vec::new();
    let mut gained = 0.0;
    while interviews.len() < req.slots {
        // The best option still open: drop options whose interviewer is full.
        let mut best: Option<(usize, f64, usize)> = None;
        for (c, list) in lists.iter_mut().enumerate() {
            while list.last().is_some_and(|o| load[o.1] >= req.max_per_rater) {
                list.pop();
            }
            let Some(o) = list.last() else { continue };
            // Among near-equal gains, the less loaded interviewer.
            let better = match best {
                None => true,
                Some((_, g, l)) => o.0 > g * (1.0 + 1e-9) || (o.0 >= g * (1.0 - 1e-9) && load[o.1] < l),
            };
            if better {
                best = Some((c, o.0, load[o.1]));
            }
        }
        let Some((c, gain, _)) = best else { break };
        if gain <= 1e-9 {
            break;
        }
        let Some((gain, rater, items)) = lists[c].pop() else { break };
        let p = &mut prospects[c];
        let (m, v, _) = p.composite(model, shape, &[], start[c]);
        let new_items: Vec<u32> = items.iter().copied().filter(|&k| !p.rated(k)).collect();
        p.add(model, &raters[rater], &items, items.len());
        load[rater] += 1;
        gained += gain;
        interviews.push(PlannedInterview {
            subject: p.subject,
            rater,
            items,
            expected_gain: gain,
            p_before: 1.0 - normal::cdf((bar - m) / v.max(1e-18).sqrt()),
            new_items,
        });
        lists[c] = options(&prospects[c], start[c]);
    }
    Plan { interviews, wrong_before, wrong_after: (wrong_before - gained).max(0.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal_distribution(mean: f64, sd: f64) -> ScoreDistribution {
        ScoreDistribution::from_quantiles(QUANTILE_GRID.map(|z| mean + sd * z))
    }

    #[test]
    fn a_gaussian_score_gives_the_gaussian_probabilities() {
        let d = normal_distribution(3.0, 0.4);
        assert!((d.p_at_least(3.0) - 0.5).abs() < 1e-6);
        assert!((d.p_at_least(3.4) - (1.0 - normal::cdf(1.0))).abs() < 1e-6);
        assert!((d.p_at_least(2.2) - normal::cdf(2.0)).abs() < 1e-6);
        assert!((d.quantile(1.25) - 3.5).abs() < 1e-6);
        // P(a > b) for independent normals: Φ((m_a − m_b)/√(s_a² + s_b²)).
        let (a, b) = (normal_distribution(3.5, 0.3), normal_distribution(3.0, 0.4));
        let expected = normal::cdf(0.5 / 0.5);
        assert!((p_above(&a, &b) - expected).abs() < 2e-3, "{} vs {expected}", p_above(&a, &b));
        assert!((p_above(&a, &b) + p_above(&b, &a) - 1.0).abs() < 1e-12);
        assert!((p_above(&a, &a) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_score_pressed_against_the_top_of_the_scale_is_read_from_its_own_shape() {
        // Quantiles that saturate at 5: the mass above 4.9 is what lies beyond z = 1.
        let d = ScoreDistribution::from_quantiles(QUANTILE_GRID.map(|z: f64| (4.7 + 0.2 * z).min(4.9)));
        assert!((d.p_at_least(4.9) - (1.0 - normal::cdf(1.0))).abs() < 1e-6);
        assert_eq!(d.p_at_least(4.95), 0.0, "nothing above the flat top");
        assert_eq!(d.p_at_least(1.0), 1.0);
    }

    #[test]
    fn tiers_break_only_where_the_evidence_separates_neighbours() {
        let ranked = [
            normal_distribution(4.5, 0.1),
            normal_distribution(4.45, 0.1),
            normal_distribution(3.5, 0.1),
            normal_distribution(3.4, 0.3),
            normal_distribution(2.0, 0.1),
        ];
        assert_eq!(tiers(&ranked), vec![1, 1, 2, 2, 3]);
        assert!(tiers(&[]).is_empty());
    }

    #[test]
    fn ordinal_information_falls_at_a_ceiling() {
        let middle = ordinal_information_share(0.5, 4, 0.12);
        let ceiling = ordinal_information_share(1.3, 4, 0.12);
        assert!(middle > 0.6 && middle <= 1.0, "{middle}");
        assert!(ceiling < 0.2, "{ceiling}");
        assert_eq!(ordinal_information_share(0.5, 0, 0.1), 1.0);
    }

    #[test]
    fn more_evidence_on_an_undecided_candidate_removes_expected_wrong_decisions() {
        let before = wrong_now(0.5, 0.01, 0.5);
        assert!((before - 0.5).abs() < 1e-6);
        let after = wrong_after(0.5, 0.01, 0.0025, 0.5);
        assert!(after < before && after > 0.0, "{after}");
        // A settled candidate has little to gain.
        let settled = wrong_now(0.9, 0.01, 0.5) - wrong_after(0.9, 0.01, 0.0025, 0.5);
        assert!(settled.abs() < 1e-3, "{settled}");
    }
}

//! Calibrated scores on a rubric's own scale: competency, dimension and overall,
//! each with a 90% interval and the raw mean beside it.

use super::decisions::{QUANTILE_GRID, ScoreDistribution};
use super::model::{ItemPosterior, Model, SubjectPosterior};
use super::{Z90, on_every_core};

/// How a rubric combines competencies: dimensions with weights, each holding
/// competencies (model items) with weights inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct RubricShape {
    pub scale_min: f64,
    pub scale_max: f64,
    pub dimensions: Vec<DimensionShape>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DimensionShape {
    pub weight: f64,
    /// (item, weight inside the dimension)
    pub items: Vec<(u32, f64)>,
}

/// A score on the rubric's scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
    /// Plain mean of the ratings behind it, same weights.
    pub raw_mean: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubjectScores {
    /// `None` when no weighted competency was rated.
    pub overall: Option<Score>,
    /// The overall score's posterior distribution (with `overall`).
    pub overall_distribution: Option<ScoreDistribution>,
    /// One per rubric dimension, `None` when none of its competencies was rated.
    pub dimensions: Vec<Option<Score>>,
    /// Rated competencies only.
    pub competencies: Vec<(u32, Score)>,
}

impl RubricShape {
    fn span(&self) -> f64 {
        (self.scale_max - self.scale_min).max(f64::MIN_POSITIVE)
    }
    fn to_scale(&self, x: f64) -> f64 {
        (self.scale_min + x * self.span()).clamp(self.scale_min, self.scale_max)
    }
    /// The score of a weighted composite of competencies. Each competency's
    /// score is the rating an average interviewer is expected to give
    /// ([`Model::expected_score`] of its latent level), so the composite is a
    /// non-linear function of the candidate's Gaussian posterior. Its interval
    /// is found along the direction in which the posterior moves the composite
    /// most (see [`CompositePath`]). For one competency that gives the exact
    /// quantiles; on a continuous scale, the Gaussian interval. Near an end of
    /// an ordinal scale the interval is asymmetric and never leaves the scale.
    fn score(
        &self,
        model: &Model,
        subject: u32,
        post: &SubjectPosterior,
        weights: &[(u32, f64)],
        raw: &[(u32, f64)],
    ) -> Option<(Score, CompositePath)> {
        let path = CompositePath::new(model, subject, post, weights)?;
        let total_raw: f64 = weights.iter().filter(|(k, _)| raw.iter().any(|r| r.0 == *k)).map(|w| w.1).sum();
        let raw_mean = weights.iter().filter_map(|(k, w)| raw.iter().find(|r| r.0 == *k).map(|r| w * r.1)).sum::<f64>()
            / total_raw.max(f64::MIN_POSITIVE);
        let score = Score {
            mean: self.to_scale(path.at(model, 0.0)),
            lower: self.to_scale(path.at(model, -Z90)),
            upper: self.to_scale(path.at(model, Z90)),
            raw_mean: self.to_scale(raw_mean),
        };
        Some((score, path))
    }

    /// The posterior distribution of a composite on the rubric's scale.
    fn distribution(&self, model: &Model, path: &CompositePath) -> ScoreDistribution {
        ScoreDistribution::from_quantiles(QUANTILE_GRID.map(|z| self.to_scale(path.at(model, z))))
    }
}

/// The one-dimensional path through a candidate's posterior along which a
/// weighted composite of competencies moves most: the latent levels shifted by
/// z times the composite's standard deviation along it (their covariance with
/// the composite's linearisation), passed through the expected rating. `at(z)`
/// is the composite's z-quantile: ±z90 give the 90% interval, and the whole
/// path the distribution that probabilities are read from.
#[derive(Debug, Clone)]
pub(crate) struct CompositePath {
    /// (item, its latent level, its shift per unit of z, its weight)
    legs: Vec<(u32, f64, f64, f64)>,
}

impl CompositePath {
    fn new(model: &Model, subject: u32, post: &SubjectPosterior, weights: &[(u32, f64)]) -> Option<CompositePath> {
        // (index into post.items, weight) of the weighted items rated.
        let rated: Vec<(usize, f64)> = weights
            .iter()
            .filter(|(_, w)| *w > 0.0)
            .filter_map(|&(k, w)| post.items.iter().position(|p| p.item == k).map(|i| (i, w)))
            .collect();
        let total: f64 = rated.iter().map(|(_, w)| w).sum();
        if rated.is_empty() || total <= 0.0 {
            return None;
        }
        let level = |p: &ItemPosterior| model.item_mean[p.item as usize] + p.theta;
        // The linearised composite Σ g_k θ_k, g_k = ω_k × slope of the expected
        // rating (floored: far past an end the slope underflows, and the
        // direction then falls back to the weights').
        let slopes: Vec<(usize, f64)> = rated
            .iter()
            .map(|&(i, w)| {
                let p = &post.items[i];
                (i, w / total * model.expected_score_slope(p.item, level(p)).max(1e-9))
            })
            .collect();
        let sum_g: f64 = slopes.iter().map(|s| s.1).sum();
        let by_item: Vec<(u32, f64)> = slopes.iter().map(|&(i, g)| (post.items[i].item, g)).collect();
        let (_, var) = model.composite_with(subject, post, &by_item)?;
        let var_linear = var * sum_g * sum_g;
        let lin = post.linear(slopes.iter().copied());
        let stretch = if lin.var > 0.0 { var_linear.sqrt() / lin.var } else { 0.0 };
        let legs = rated
            .iter()
            .zip(&slopes)
            .map(|(&(i, w), &(_, g))| {
                let p = &post.items[i];
                (p.item, level(p), post.covariance(&lin, i, g) * stretch, w / total)
            })
            .collect();
        Some(CompositePath { legs })
    }

    /// The composite (0..1 of the scale) at z standard deviations along the path.
    fn at(&self, model: &Model, z: f64) -> f64 {
        self.legs.iter().map(|&(item, level, shift, w)| w * model.expected_score(item, level + z * shift)).sum()
    }
}

/// Mean rating (0..1) of each item the subject was rated on.
fn raw_means(model: &Model, subject: u32) -> Vec<(u32, f64)> {
    let mut out: Vec<(u32, f64, f64)> = Vec::new();
    for o in model.ratings(subject) {
        match out.last_mut() {
            Some(last) if last.0 == o.item => {
                last.1 += o.value();
                last.2 += 1.0;
            }
            _ => out.push((o.item, o.value(), 1.0)),
        }
    }
    out.into_iter().map(|(k, s, n)| (k, s / n)).collect()
}

/// A subject's calibrated scores under a rubric. Unrated competencies are left
/// out and the weights of the rated ones renormalised — never counted as zero.
pub fn subject_scores(model: &Model, subject: u32, shape: &RubricShape) -> SubjectScores {
    scores(model, subject, shape, true)
}

/// Overall and dimension scores only (what a ranking shows).
pub fn ranking_scores(model: &Model, subject: u32, shape: &RubricShape) -> SubjectScores {
    scores(model, subject, shape, false)
}

fn scores(model: &Model, subject: u32, shape: &RubricShape, with_competencies: bool) -> SubjectScores {
    let post = model.posterior(subject, None);
    let raw = raw_means(model, subject);
    let rated = |k: u32| raw.iter().any(|r| r.0 == k);
    let competencies = if with_competencies {
        raw.iter()
            .filter(|(k, _)| shape.dimensions.iter().any(|d| d.items.iter().any(|(i, _)| i == k)))
            .filter_map(|&(k, _)| shape.score(model, subject, &post, &[(k, 1.0)], &raw).map(|s| (k, s.0)))
            .collect()
    } else {
        Vec::new()
    };
    let dimensions: Vec<Option<Score>> = shape
        .dimensions
        .iter()
        .map(|d| {
            let weights: Vec<(u32, f64)> = d.items.iter().copied().filter(|(k, w)| rated(*k) && *w > 0.0).collect();
            if weights.is_empty() { None } else { shape.score(model, subject, &post, &weights, &raw).map(|s| s.0) }
        })
        .collect();
    let overall_weights = shape.overall_weights(rated);
    let overall =
        if overall_weights.is_empty() { None } else { shape.score(model, subject, &post, &overall_weights, &raw) };
    let overall_distribution = overall.as_ref().map(|(_, path)| shape.distribution(model, path));
    SubjectScores { overall: overall.map(|s| s.0), overall_distribution, dimensions, competencies }
}

impl RubricShape {
    /// The model dimension (see [`Model::set_item_group`]) of each competency
    /// that gets one: those of a dimension of two or more competencies in a
    /// rubric with competencies outside it. A dimension of one competency has
    /// no level of its own beyond that competency's, and in a rubric of one
    /// dimension its level is the general one: neither could be told apart.
    /// A dimension is named by its first competency's item, unique as items
    /// are per rubric.
    pub fn item_groups(&self) -> Vec<(u32, u32)> {
        let total: usize = self.dimensions.iter().map(|d| d.items.len()).sum();
        self.dimensions
            .iter()
            .filter(|d| d.items.len() >= 2 && d.items.len() < total)
            .flat_map(|d| {
                let group = d.items[0].0;
                d.items.iter().map(move |&(k, _)| (k, group))
            })
            .collect()
    }

    /// The overall score's weight of each competency when `rated` tells which
    /// were rated: dimension weights over the dimensions that were assessed,
    /// each spread over its rated competencies (unrated ones left out, never
    /// counted as zero).
    pub fn overall_weights(&self, rated: impl Fn(u32) -> bool) -> Vec<(u32, f64)> {
        let assessed = |d: &DimensionShape| d.weight > 0.0 && d.items.iter().any(|&(k, w)| rated(k) && w > 0.0);
        let present: f64 = self.dimensions.iter().filter(|d| assessed(d)).map(|d| d.weight).sum();
        let mut weights = Vec::new();
        for d in self.dimensions.iter().filter(|d| assessed(d)) {
            let inside: f64 = d.items.iter().filter(|(k, w)| rated(*k) && *w > 0.0).map(|(_, w)| w).sum();
            for &(k, w) in d.items.iter().filter(|(k, w)| rated(*k) && *w > 0.0) {
                weights.push((k, d.weight / present * w / inside));
            }
        }
        weights
    }
}

/// Spearman's rank correlation (average ranks for ties). `None` under 2 points
/// or when either side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0 + 1.0;
            for &k in &idx[i..=j] {
                r[k] = avg;
            }
            i = j + 1;
        }
        r
    }
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    if vx <= 0.0 || vy <= 0.0 { None } else { Some(cov / (vx * vy).sqrt()) }
}

/// Groups of raters and subjects linked by ratings (union-find); returns each
/// subject's group id. Subjects in different groups cannot be compared: no
/// rater links them.
pub fn connected_groups(model: &Model) -> Vec<u32> {
    let mut groups = Groups::from_model(model);
    (0..model.subject_count() as u32).map(|s| groups.of_subject(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_get_a_level_only_where_the_data_can_tell_it_apart() {
        let dimension =
            |items: Vec<u32>| DimensionShape { weight: 1.0, items: items.into_iter().map(|k| (k, 1.0)).collect() };
        let shape = |dimensions| RubricShape { scale_min: 1.0, scale_max: 5.0, dimensions };
        // Two dimensions of several competencies: each named by its first item.
        assert_eq!(
            shape(vec![dimension(vec![3, 4]), dimension(vec![5, 6, 7])]).item_groups(),
            vec![(3, 3), (4, 3), (5, 5), (6, 5), (7, 5)]
        );
        // A dimension of one competency has no level beyond it.
        assert_eq!(shape(vec![dimension(vec![1]), dimension(vec![2, 8])]).item_groups(), vec![(2, 2), (8, 2)]);
        // One dimension holding everything: its level is the general level.
        assert!(shape(vec![dimension(vec![1, 2, 3])]).item_groups().is_empty());
        assert!(shape(vec![dimension(vec![1, 2]), dimension(vec![])]).item_groups().is_empty());
    }
    use crate::calibration::model::Obs;

    #[test]
    fn spearman_matches_hand_computed_values() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // Ties get average ranks: x ranks 1,2.5,2.5,4 against 1,2,3,4.
        let rho = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).expect("defined");
        assert!((rho - 0.948_683_298).abs() < 1e-6, "{rho}");
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn unrated_dimensions_are_left_out_not_zero() {
        let mut m = Model::new();
        // Subject 0: rated high on item 0 (dimension A) only.
        for r in 0..3 {
            m.add(0, &[Obs::new(r, 0, r, 1.0, 0.0)]);
            m.add(1, &[Obs::new(r, 0, 10 + r, 0.0, 0.0), Obs::new(r, 1, 10 + r, 0.0, 0.0)]);
        }
        m.fit(500, 1e-7);
        let shape = RubricShape {
            scale_min: 1.0,
            scale_max: 4.0,
            dimensions: vec![
                DimensionShape { weight: 0.5, items: vec![(0, 1.0)] },
                DimensionShape { weight: 0.5, items: vec![(1, 1.0)] },
            ],
        };
        let s = subject_scores(&m, 0, &shape);
        assert!(s.dimensions[1].is_none());
        let overall = s.overall.expect("overall");
        assert_eq!(overall.raw_mean, 4.0, "raw mean of the rated competency only");
        assert!(overall.mean > 3.0 && overall.lower <= overall.mean && overall.mean <= overall.upper);
        assert!(overall.lower >= 1.0 && overall.upper <= 4.0);
    }

    #[test]
    fn on_an_ordinal_scale_intervals_at_the_top_stay_on_the_scale_and_open_downwards() {
        // 1..5; five raters who agree within a point; candidate 0 earns a 5
        // from everyone, the others spread over the scale.
        let mut m = Model::new();
        m.set_item_steps(0, 4);
        let mut sc = 0;
        for c in 0..30u32 {
            for r in 0..5u32 {
                let score = if c == 0 { 4 } else { (c % 5 + (c + r) % 3).saturating_sub(1).min(4) };
                m.add(c, &[Obs::new(r, 0, sc, f64::from(score) / 4.0, 0.0)]);
                sc += 1;
            }
        }
        m.fit(2000, 1e-8);
        let shape = RubricShape {
            scale_min: 1.0,
            scale_max: 5.0,
            dimensions: vec![DimensionShape { weight: 1.0, items: vec![(0, 1.0)] }],
        };
        let top = subject_scores(&m, 0, &shape).overall.expect("rated");
        assert_eq!(top.raw_mean, 5.0);
        assert!(top.upper <= 5.0 && top.mean > 4.5, "{top:?}");
        assert!(top.mean - top.lower > 2.0 * (top.upper - top.mean), "asymmetric, open downwards: {top:?}");
        // Every other candidate is below, with an interval inside the scale.
        for c in 1..30 {
            let s = subject_scores(&m, c, &shape).overall.expect("rated");
            assert!(s.mean < top.mean && s.lower >= 1.0 && s.upper <= 5.0, "{s:?}");
            assert!(s.lower <= s.mean && s.mean <= s.upper);
        }
    }

    #[test]
    fn incremental_ranking_matches_a_fresh_one_within_the_lag_bound() {
        use crate::calibration::synthetic::{Org, Spec};
        // Above the size where updates stay local.
        let mut org = Org::generate(&Spec::sized(5, 30_000));
        org.model.fit(200, 1e-6);
        let subjects: Vec<u32> = (0..org.model.subject_count() as u32).collect();
        let mut ranking = JobRanking::build(&org.model, &org.shape, subjects.iter().copied());
        for i in 0..3u32 {
            let (subject, rater) = (i * 97 % 1000, i * 13 % 40);
            let obs: Vec<Obs> = (0..4).map(|k| Obs::new(rater, k, 1_000_000 + i, 0.9, 0.5)).collect();
            org.model.add(subject, &obs);
            let touched = org.model.update_locally(subject, &[rater]).expect("a local update");
            assert!(touched.contains(&subject));
            ranking.update(&org.model, &org.shape, touched);
        }
        // Subjects a local update skipped lag by at most the propagation bound
        // (model::PROPAGATE_CHANGE of the 1..5 scale, for severity and range use).
        let fresh = JobRanking::build(&org.model, &org.shape, subjects.iter().copied());
        let bound = 2.0 * crate::calibration::model::PROPAGATE_CHANGE * 4.0;
        let overall = |r: &JobRanking| {
            let mut v: Vec<(u32, f64)> =
                r.in_order().map(|e| (e.subject, e.scores.overall.map_or(f64::NAN, |s| s.mean))).collect();
            v.sort_by_key(|(s, _)| *s);
            v
        };
        let (kept, rebuilt) = (overall(&ranking), overall(&fresh));
        assert_eq!(kept.len(), rebuilt.len());
        for ((s, a), (t, b)) in kept.iter().zip(&rebuilt) {
            assert_eq!(s, t);
            assert!((a - b).abs() <= bound, "subject {s}: kept {a}, rebuilt {b}");
        }
    }

    #[test]
    fn ranking_every_job_at_once_equals_ranking_each_alone() {
        use crate::calibration::synthetic::{Org, Spec};
        let mut org = Org::generate(&Spec::sized(9, 20_000));
        org.model.fit(200, 1e-6);
        // Three "jobs" of unequal size, one empty, one naming a candidate twice.
        let n = org.model.subject_count() as u32;
        let jobs = vec![
            ("a", org.shape.clone(), (0..n / 3).collect::<Vec<u32>>()),
            ("b", org.shape.clone(), Vec::new()),
            ("c", org.shape.clone(), (n / 3..n).chain([n - 1]).collect()),
        ];
        let together = JobRanking::build_all(&org.model, jobs.clone());
        assert_eq!(together.len(), 3);
        for ((key, shape, subjects), (built_key, built)) in jobs.into_iter().zip(&together) {
            assert_eq!(key, *built_key);
            let alone = JobRanking::build(&org.model, &shape, subjects);
            assert_eq!(built.len(), alone.len(), "job {key}");
            assert!(built.in_order().eq(alone.in_order()), "job {key}: the same entries in the same order");
        }
        assert!(!together[0].1.is_empty() && !together[2].1.is_empty());
    }

    #[test]
    fn groups_read_back_from_their_parents_and_refuse_a_broken_list() {
        let mut g = Groups::default();
        g.link(0, 0);
        g.link(1, 0);
        g.link(2, 1);
        let mut back = Groups::from_parents(g.parents().to_vec()).expect("a list it wrote");
        for s in 0..3 {
            assert_eq!(back.of_subject(s), g.of_subject(s));
        }
        assert!(Groups::from_parents(vec![1, 0]).is_none(), "a cycle");
        assert!(Groups::from_parents(vec![0, 5]).is_none(), "out of range");
        assert!(Groups::from_parents(vec![0, 0, 1]).is_some());
    }

    #[test]
    fn groups_without_a_shared_rater_are_separate() {
        let mut m = Model::new();
        m.add(0, &[Obs::new(0, 0, 0, 0.5, 0.0)]);
        m.add(1, &[Obs::new(0, 0, 1, 0.5, 0.0), Obs::new(1, 0, 2, 0.5, 0.0)]);
        m.add(2, &[Obs::new(2, 0, 3, 0.5, 0.0)]);
        let g = connected_groups(&m);
        assert_eq!(g[0], g[1]);
        assert_ne!(g[0], g[2]);
        let mut groups = Groups::from_model(&m);
        assert_eq!(groups.of_subject(0), groups.of_subject(1));
        assert_ne!(groups.of_subject(0), groups.of_subject(2));
        groups.link(2, 1);
        assert_eq!(groups.of_subject(0), groups.of_subject(2), "a shared rater joins the groups");
    }
}

/// Groups of subjects linked through shared raters, kept up to date as ratings
/// arrive (union–find over subjects and raters). Links are never removed; a
/// full rebuild ([`Groups::from_model`]) follows every full refit.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// Node 2s is subject s, node 2r+1 is rater r.
    parent: Vec<u32>,
}

impl Groups {
    pub fn from_model(model: &Model) -> Groups {
        let mut g = Groups::default();
        for s in 0..model.subject_count() as u32 {
            for o in model.ratings(s) {
                g.link(s, o.rater);
            }
        }
        g
    }

    fn find(&mut self, mut x: u32) -> u32 {
        if self.parent.len() <= x as usize {
            let from = self.parent.len() as u32;
            self.parent.extend(from..=x);
        }
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    pub fn link(&mut self, subject: u32, rater: u32) {
        let (a, b) = (self.find(2 * subject), self.find(2 * rater + 1));
        if a != b {
            self.parent[a as usize] = b;
        }
    }

    /// The union–find's parents, for a snapshot: the same parents give the
    /// same groups under the same numbers.
    pub fn parents(&self) -> &[u32] {
        &self.parent
    }

    /// Groups from [`Groups::parents`]; `None` unless every parent chain
    /// ends at a root within the list.
    pub fn from_parents(parent: Vec<u32>) -> Option<Groups> {
        // 0: not seen, 1: on the chain being followed, 2: leads to a root.
        let mut seen = vec![0u8; parent.len()];
        for start in 0..parent.len() {
            let mut x = start;
            while seen[x] == 0 {
                seen[x] = 1;
                let p = *parent.get(x)? as usize;
                if p >= parent.len() {
                    return None;
                }
                if p == x {
                    break;
                }
                x = p;
            }
            if seen[x] == 1 && parent[x] as usize != x {
                return None; // a cycle that is not a root
            }
            let mut y = start;
            while seen[y] == 1 {
                seen[y] = 2;
                y = parent[y] as usize;
            }
        }
        Some(Groups { parent })
    }

    /// The group a subject belongs to.
    pub fn of_subject(&mut self, subject: u32) -> u32 {
        self.find(2 * subject)
    }
}

/// A subject's place-defining numbers in a job's ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankEntry {
    pub subject: u32,
    pub scores: SubjectScores,
    pub scorecards: u32,
    /// Spread (0..1) of the per-scorecard averages after rater severity.
    pub disagreement: f64,
}

/// Runs the candidates of [`JobRanking::build_all`] are cut into, shared by the cores.
const SCORING_RUNS: usize = 8;

/// A job's ranking, maintained incrementally: after an update only the
/// subjects whose posterior changed are rescored, then the order is re-sorted.
#[derive(Debug, Clone, Default)]
pub struct JobRanking {
    entries: std::collections::HashMap<u32, RankEntry>,
    order: Vec<u32>,
}

fn rank_entry(model: &Model, shape: &RubricShape, subject: u32) -> Option<RankEntry> {
    let scores = ranking_scores(model, subject, shape);
    scores.overall?;
    let mut cards: Vec<(u32, f64, f64)> = Vec::new();
    for o in model.ratings(subject) {
        let adjusted = o.value() - model.severity[o.rater as usize];
        match cards.iter_mut().find(|c| c.0 == o.scorecard) {
            Some(c) => {
                c.1 += adjusted;
                c.2 += 1.0;
            }
            None => cards.push((o.scorecard, adjusted, 1.0)),
        }
    }
    let means: Vec<f64> = cards.iter().map(|c| c.1 / c.2).collect();
    let disagreement = if means.len() >= 2 {
        let m = means.iter().sum::<f64>() / means.len() as f64;
        (means.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (means.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
    Some(RankEntry { subject, scores, scorecards: cards.len() as u32, disagreement })
}

impl JobRanking {
    pub fn build(model: &Model, shape: &RubricShape, subjects: impl IntoIterator<Item = u32>) -> JobRanking {
        let mut r = JobRanking::default();
        r.update(model, shape, subjects);
        r
    }

    /// Every job's ranking at once, as [`JobRanking::build`] gives each, with
    /// the candidates scored on every core: a start-up or a reload ranks
    /// every job of the organisation before it answers (about 40 µs a
    /// candidate, most of it the score distributions), and a refit re-ranks
    /// every job someone reads. A candidate's scores depend on the model
    /// only, so the cores' shares are independent.
    pub fn build_all<K>(model: &Model, jobs: Vec<(K, RubricShape, Vec<u32>)>) -> Vec<(K, JobRanking)> {
        // (job, candidate) of every candidate, cut into contiguous runs.
        let work: Vec<(usize, u32)> =
            jobs.iter().enumerate().flat_map(|(j, (_, _, subjects))| subjects.iter().map(move |&s| (j, s))).collect();
        let run = work.len().div_ceil(SCORING_RUNS).max(1);
        let shapes: Vec<&RubricShape> = jobs.iter().map(|j| &j.1).collect();
        let scored = on_every_core(work.chunks(run).collect(), |run: &[(usize, u32)]| {
            run.iter().map(|&(j, s)| rank_entry(model, shapes[j], s)).collect::<Vec<_>>()
        });
        let mut rankings = vec![JobRanking::default(); jobs.len()];
        for (&(j, s), entry) in work.iter().zip(scored.into_iter().flatten()) {
            match entry {
                Some(e) => {
                    rankings[j].entries.insert(s, e);
                }
                None => {
                    rankings[j].entries.remove(&s);
                }
            }
        }
        rankings.iter_mut().for_each(JobRanking::sort);
        jobs.into_iter().zip(rankings).map(|((key, _, _), ranking)| (key, ranking)).collect()
    }

    /// Rescores `changed` subjects (adding or dropping them as needed) and re-sorts.
    pub fn update(&mut self, model: &Model, shape: &RubricShape, changed: impl IntoIterator<Item = u32>) {
        for s in changed {
            match rank_entry(model, shape, s) {
                Some(e) => {
                    self.entries.insert(s, e);
                }
                None => {
                    self.entries.remove(&s);
                }
            }
        }
        self.sort();
    }

    /// Orders the entries best first (the subject's number breaks ties).
    fn sort(&mut self) {
        // Each key read once, not looked up twice per comparison: a sort after
        // every submission was 2% of the mixed benchmark's CPU in `perf`.
        let mut keyed: Vec<(f64, u32)> =
            self.entries.iter().map(|(s, e)| (e.scores.overall.map_or(f64::NEG_INFINITY, |o| o.mean), *s)).collect();
        keyed.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        self.order = keyed.into_iter().map(|(_, s)| s).collect();
    }

    /// Entries, best first.
    pub fn in_order(&self) -> impl Iterator<Item = &RankEntry> {
        self.order.iter().map(|s| &self.entries[s])
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

//! Synthetic organisations with known truth, for the calibration benchmark and
//! property tests: candidates with true abilities, raters of planted kinds,
//! ordinal ratings through thresholds, sparse panels and correlated dimensions.
//! Deterministic for a seed.

use scorecard::calibration::model::{Model, Obs};
use scorecard::calibration::raters::ScorecardFacts;
use scorecard::calibration::scores::{DimensionShape, RubricShape};

/// SplitMix64: small, fast, and stable across versions (results must not change
/// when a dependency does).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RaterKind {
    Normal,
    Severe,
    Lenient,
    Noisy,
    Halo,
    CentralTendency,
    Drift,
}

impl RaterKind {
    pub const PLANTED: [RaterKind; 6] = [
        RaterKind::Severe,
        RaterKind::Lenient,
        RaterKind::Noisy,
        RaterKind::Halo,
        RaterKind::CentralTendency,
        RaterKind::Drift,
    ];
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    pub seed: u64,
    pub jobs: usize,
    pub candidates_per_job: usize,
    pub interviews_per_candidate: usize,
    pub focus_min: usize,
    pub focus_max: usize,
    pub raters: Vec<RaterKind>,
    /// A normal rater (appended) who interviews only candidates with general
    /// level above this: non-random assignment.
    pub selective_rater_above: Option<f64>,
    /// An extra job whose candidates are interviewed only by this many extra
    /// raters, linked to nobody else: a disconnected group.
    pub island: Option<(usize, usize)>,
    /// Points of the rubric's scale (1..points): 5 by default, 4 for the
    /// other common interview scale.
    pub points: u8,
    /// Candidates' self-identified categories, and raters who score one of
    /// them differently from how they see them (the fairness benchmark).
    pub groups: Option<GroupBias>,
}

/// Categories of candidates (one grouping) and raters biased against one.
#[derive(Debug, Clone)]
pub struct GroupBias {
    /// Share of candidates in each category (numbered from 0); the rest unknown.
    pub shares: Vec<f64>,
    /// The category the biased raters score differently.
    pub against: u8,
    /// Latent shift of a biased rater's ratings of that category's
    /// candidates (negative: lower; latent units are scale points).
    pub shift: f64,
    /// How many raters are biased: the first normal raters.
    pub raters: usize,
}

impl Spec {
    /// The reference organisation: 300 candidates (6 jobs × 50), 5
    /// interviews each with 3–5 focus competencies, 36 raters of whom a third are
    /// planted (two of each kind).
    pub fn reference(seed: u64) -> Spec {
        let mut raters = vec![RaterKind::Normal; 24];
        for kind in RaterKind::PLANTED {
            raters.push(kind);
            raters.push(kind);
        }
        Spec {
            seed,
            jobs: 6,
            candidates_per_job: 50,
            interviews_per_candidate: 5,
            focus_min: 3,
            focus_max: 5,
            raters,
            selective_rater_above: None,
            island: None,
            points: 5,
            groups: None,
        }
    }

    /// A large organisation of about `ratings` ratings (≈ 20 per candidate, 25
    /// candidates per rater), normal raters only.
    pub fn sized(seed: u64, ratings: usize) -> Spec {
        let candidates = (ratings / 20).max(10);
        Spec {
            seed,
            jobs: (candidates / 50).max(1),
            candidates_per_job: 50.min(candidates),
            interviews_per_candidate: 5,
            focus_min: 4,
            focus_max: 4,
            raters: vec![RaterKind::Normal; (candidates / 25).max(6)],
            selective_rater_above: None,
            island: None,
            points: 5,
            groups: None,
        }
    }
}

/// Latent thresholds of a 1..points scale, one latent unit apart and centred
/// (−1.5, −0.5, 0.5, 1.5 for 1..5; −1, 0, 1 for 1..4).
fn thresholds(points: u8) -> impl Iterator<Item = f64> {
    (1..points).map(move |i| f64::from(i) - f64::from(points) / 2.0)
}
/// Noise of a normal rater (latent units).
pub const NORMAL_NOISE: f64 = 0.5;
/// Spread of normal raters' severities (latent units ≈ scale points).
pub const NORMAL_SEVERITY_SD: f64 = 0.25;
const COMPETENCIES: usize = 10;

/// A generated organisation and its truth.
#[derive(Clone)]
pub struct Org {
    pub model: Model,
    pub scorecards: Vec<ScorecardFacts>,
    pub shape: RubricShape,
    /// Job of each subject.
    pub subject_job: Vec<u32>,
    /// Each subject's true latent ability per competency.
    pub truth_theta: Vec<[f64; COMPETENCIES]>,
    pub rater_kinds: Vec<RaterKind>,
    /// Points of the scale (1..points).
    pub points: u8,
    /// Index of the selective rater, if any.
    pub selective_rater: Option<u32>,
    /// Subjects of the island job, if any.
    pub island_job: Option<u32>,
    /// Each subject's category (with `Spec::groups`; `None`: unknown).
    pub subject_category: Vec<Option<u8>>,
    /// The raters planted as biased against a category.
    pub biased_raters: Vec<u32>,
    /// Each rater's true severity (latent units; a drifting rater's moves).
    pub rater_severity: Vec<f64>,
    /// Each subject's latent make-up.
    pub people: Vec<Person>,
}

/// A candidate's latent make-up: general level, the two dimensions' own
/// levels, and when they were interviewed (0..1).
#[derive(Debug, Clone, Copy)]
pub struct Person {
    pub general: f64,
    pub technical: f64,
    pub communication: f64,
    pub when: f64,
}

/// How one rater rates.
struct Rating {
    kind: RaterKind,
    severity: f64,
    /// Latent shift of this rater's ratings of this candidate (group bias).
    bias: f64,
    points: u8,
}

impl Rating {
    /// One scorecard of `focus` competencies at time `t`.
    #[allow(clippy::too_many_arguments)]
    fn scorecard(
        &self,
        rng: &mut Rng,
        person: &Person,
        theta: &[f64; COMPETENCIES],
        subject: u32,
        r: u32,
        scorecard: u32,
        focus: &[u32],
        t: f64,
    ) -> (Vec<Obs>, ScorecardFacts) {
        let (points, kind) = (self.points, self.kind);
        let steps = f64::from(points - 1);
        let s = match kind {
            RaterKind::Drift => -1.0 + 2.0 * t,
            _ => self.severity,
        };
        let impression = person.general + 0.5 * (person.technical + person.communication) + 0.5 * rng.normal();
        let mut obs = Vec::new();
        let mut total = 0.0;
        for &k in focus {
            let th = theta[k as usize];
            let latent = match kind {
                RaterKind::Noisy => th + s + 1.3 * rng.normal(),
                RaterKind::Halo => impression + s + 0.15 * rng.normal(),
                RaterKind::CentralTendency => 0.35 * th + s + 0.35 * rng.normal(),
                _ => th + s + NORMAL_NOISE * rng.normal(),
            };
            let score = ordinal(latent + self.bias, points);
            total += f64::from(score);
            obs.push(Obs::new(r, k, scorecard, f64::from(score - 1) / steps, t));
        }
        // The mean rating's place on the scale (3.5, 3 and 2 on 1..5).
        let mean = (total / focus.len().max(1) as f64 - 1.0) / steps;
        let facts = ScorecardFacts {
            rater: r,
            subject,
            recommendation: if mean >= 0.625 {
                4
            } else if mean >= 0.5 {
                3
            } else if mean >= 0.25 {
                2
            } else {
                1
            },
            thin_evidence: 0,
            ratings: focus.len() as u32,
            scale_span: steps,
        };
        (obs, facts)
    }
}

/// What an average rater (severity 0, normal noise) is expected to give, on the
/// 1..points scale, to a latent level θ.
pub fn expected_rating(theta: f64, points: u8) -> f64 {
    1.0 + thresholds(points).map(|t| normal_cdf((theta - t) / NORMAL_NOISE)).sum::<f64>()
}

impl Org {
    /// The rating (0..1 of the scale) rater `rater` gives competency `item` of
    /// `subject` on a new scorecard, as a normal rater of their true severity
    /// would: the benchmark's stand-in for a live submission.
    pub fn new_rating(&self, rng: &mut Rng, subject: u32, rater: u32, item: u32) -> f64 {
        let latent = self.truth_theta[subject as usize][item as usize]
            + self.rater_severity[rater as usize]
            + NORMAL_NOISE * rng.normal();
        f64::from(ordinal(latent, self.points) - 1) / f64::from(self.points - 1)
    }
}

fn ordinal(latent: f64, points: u8) -> u8 {
    1 + thresholds(points).filter(|&t| latent > t).count() as u8
}

impl Org {
    pub fn generate(spec: &Spec) -> Org {
        let mut rng = Rng::new(spec.seed);
        let mut kinds = spec.raters.clone();
        let selective_rater = spec.selective_rater_above.map(|_| {
            kinds.push(RaterKind::Normal);
            (kinds.len() - 1) as u32
        });
        let regular_raters = spec.raters.len();
        let severity: Vec<f64> = kinds
            .iter()
            .map(|k| match k {
                RaterKind::Severe => -1.2 + 0.1 * rng.normal(),
                RaterKind::Lenient => 1.2 + 0.1 * rng.normal(),
                _ => NORMAL_SEVERITY_SD * rng.normal(),
            })
            .collect();
        let mut island_raters = Vec::new();
        if let Some((raters, _)) = spec.island {
            for _ in 0..raters {
                kinds.push(RaterKind::Normal);
                island_raters.push((kinds.len() - 1) as u32);
            }
        }
        let mut severity = severity;
        severity.resize(kinds.len(), 0.0);
        // Categories and bias from a stream of their own, so that the
        // organisation is the same with or without them.
        let mut group_rng = Rng::new(spec.seed ^ 0x6A09_E667_F3BC_C908);
        let biased_raters: Vec<u32> = match &spec.groups {
            Some(g) => {
                (0..regular_raters as u32).filter(|&r| kinds[r as usize] == RaterKind::Normal).take(g.raters).collect()
            }
            None => Vec::new(),
        };
        let mut subject_category = Vec::new();

        let points = spec.points;
        let shape = RubricShape {
            scale_min: 1.0,
            scale_max: f64::from(points),
            dimensions: vec![
                DimensionShape { weight: 0.5, items: (0..5).map(|k| (k, 1.0)).collect() },
                DimensionShape { weight: 0.5, items: (5..10).map(|k| (k, 1.0)).collect() },
            ],
        };
        let mut model = Model::new();
        for k in 0..COMPETENCIES as u32 {
            model.set_item_steps(k, u32::from(points - 1));
        }
        // As the service does for a rubric (RubricShape::item_groups).
        for (k, group) in shape.item_groups() {
            model.set_item_group(k, group);
        }
        let mut scorecards = Vec::new();
        let mut people = Vec::new();
        let mut subject_job = Vec::new();
        let mut truth_theta = Vec::new();
        let jobs = spec.jobs + usize::from(spec.island.is_some());
        let island_job = spec.island.map(|_| spec.jobs as u32);
        for job in 0..jobs {
            let in_island = Some(job as u32) == island_job;
            let candidates = match (in_island, spec.island) {
                (true, Some((_, n))) => n,
                _ => spec.candidates_per_job,
            };
            for _ in 0..candidates {
                let subject = subject_job.len() as u32;
                subject_job.push(job as u32);
                let category = spec.groups.as_ref().and_then(|g| {
                    let u = group_rng.uniform();
                    let mut total = 0.0;
                    g.shares.iter().position(|share| {
                        total += share;
                        u < total
                    })
                });
                subject_category.push(category.map(|c| c as u8));
                let general = rng.normal();
                let technical = 0.5 * rng.normal();
                let communication = 0.5 * rng.normal();
                let mut theta = [0.0; COMPETENCIES];
                for (k, t) in theta.iter_mut().enumerate() {
                    let dimension = if k < 5 { technical } else { communication };
                    *t = general + dimension + 0.3 * rng.normal();
                }
                truth_theta.push(theta);
                let when = rng.uniform();
                // Panel: distinct raters.
                let pool: Vec<u32> = if in_island {
                    island_raters.clone()
                } else {
                    let mut p: Vec<u32> = (0..regular_raters as u32).collect();
                    if let (Some(r), Some(above)) = (selective_rater, spec.selective_rater_above)
                        && general > above
                    {
                        p.push(r);
                    }
                    p
                };
                let mut panel: Vec<u32> = Vec::new();
                if let (Some(r), Some(above)) = (selective_rater, spec.selective_rater_above)
                    && general > above
                    && !in_island
                    && rng.uniform() < 0.5
                {
                    panel.push(r);
                }
                while panel.len() < spec.interviews_per_candidate.min(pool.len()) {
                    let r = pool[rng.below(pool.len())];
                    if !panel.contains(&r) {
                        panel.push(r);
                    }
                }
                for &r in &panel {
                    let scorecard = scorecards.len() as u32;
                    let n_focus = spec.focus_min + rng.below(spec.focus_max - spec.focus_min + 1);
                    let mut focus: Vec<u32> = Vec::new();
                    while focus.len() < n_focus {
                        let k = rng.below(COMPETENCIES) as u32;
                        if !focus.contains(&k) {
                            focus.push(k);
                        }
                    }
                    let t = (when + 0.01 * rng.uniform()).min(1.0);
                    let bias = match &spec.groups {
                        Some(g) if biased_raters.contains(&r) && category == Some(usize::from(g.against)) => g.shift,
                        _ => 0.0,
                    };
                    let person = Person { general, technical, communication, when };
                    let rating = Rating { kind: kinds[r as usize], severity: severity[r as usize], bias, points };
                    let (obs, facts) = rating.scorecard(&mut rng, &person, &theta, subject, r, scorecard, &focus, t);
                    model.add(subject, &obs);
                    scorecards.push(facts);
                }
                people.push(Person { general, technical, communication, when });
            }
        }
        Org {
            model,
            scorecards,
            shape,
            subject_job,
            truth_theta,
            rater_kinds: kinds,
            points,
            selective_rater,
            island_job,
            subject_category,
            biased_raters,
            rater_severity: severity,
            people,
        }
    }

    /// One more interview of `subject` by `rater` on `focus`, rated from the
    /// truth as the generated ones were (no group bias), added to the model.
    pub fn interview(&mut self, rng: &mut Rng, subject: u32, rater: u32, focus: &[u32]) -> Vec<Obs> {
        let person = self.people[subject as usize];
        let scorecard = self.scorecards.len() as u32;
        let t = (person.when + 0.01 * rng.uniform()).min(1.0);
        let rating = Rating {
            kind: self.rater_kinds[rater as usize],
            severity: self.rater_severity[rater as usize],
            bias: 0.0,
            points: self.points,
        };
        let theta = self.truth_theta[subject as usize];
        let (obs, facts) = rating.scorecard(rng, &person, &theta, subject, rater, scorecard, focus, t);
        self.model.add(subject, &obs);
        self.scorecards.push(facts);
        obs
    }

    /// The subject's true overall on the 1..points scale over `items` with the
    /// rubric's weights (renormalised over those items, like the estimate).
    pub fn truth(&self, subject: u32, items: &[u32]) -> f64 {
        let theta = &self.truth_theta[subject as usize];
        let mut total = 0.0;
        let mut weight = 0.0;
        let dims: Vec<Vec<u32>> = self
            .shape
            .dimensions
            .iter()
            .map(|d| d.items.iter().map(|i| i.0).filter(|k| items.contains(k)).collect())
            .collect();
        let present = dims.iter().filter(|d| !d.is_empty()).count() as f64;
        for d in dims.iter().filter(|d| !d.is_empty()) {
            for &k in d {
                let w = 1.0 / present / d.len() as f64;
                total += w * expected_rating(theta[k as usize], self.points);
                weight += w;
            }
        }
        if weight > 0.0 { total / weight } else { f64::NAN }
    }

    /// The items a subject was rated on.
    pub fn rated_items(&self, subject: u32) -> Vec<u32> {
        let mut items: Vec<u32> = self.model.ratings(subject).iter().map(|o| o.item).collect();
        items.dedup();
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_tables() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.644_853_6) - 0.95).abs() < 1e-6);
        assert!((normal_cdf(-1.959_964) - 0.025).abs() < 1e-6);
    }

    #[test]
    fn generation_is_deterministic() {
        let a = Org::generate(&Spec::reference(7));
        let b = Org::generate(&Spec::reference(7));
        assert_eq!(a.model.total_ratings(), b.model.total_ratings());
        assert_eq!(a.model.ratings(5), b.model.ratings(5));
        assert_eq!(a.subject_job.len(), 300);
    }
}

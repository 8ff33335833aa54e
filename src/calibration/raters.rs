//! Rater diagnostics: how each interviewer rates compared with the organisation,
//! and the flags a recruiter should see, each with a sentence saying why.

use serde::{Deserialize, Serialize};

use super::model::{Model, PanelViews};
use super::{Z90, on_every_core};

/// Thresholds of the rater flags. Every default is documented in
/// docs/calibration.md; each can be overridden through
/// `SCORECARD_CALIBRATION_SETTINGS` (JSON with any subset of these fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Fewer ratings than this: `INSUFFICIENT_DATA`, no other flag.
    pub min_ratings: u32,
    /// Fewer candidates also seen by other raters than this: `INSUFFICIENT_DATA`.
    pub min_shared_candidates: u32,
    /// `SEVERE`/`LENIENT` when the whole 90% interval of the severity lies beyond
    /// this many scale points × (scale range) … in 0..1 units of the scale.
    pub severity: f64,
    /// `INCONSISTENT` when noise exceeds the organisation's median by this factor.
    pub noise_ratio: f64,
    /// `HALO` when within-scorecard spread is below this share of what the panel's
    /// view of the candidate predicts.
    pub halo_ratio: f64,
    /// `CENTRAL_TENDENCY` when the rater's scores move less than this much per unit
    /// of the panel's view of the candidate (1 = like the panel).
    pub range_use: f64,
    /// `DRIFT` when severity moved more than this (0..1 units) over the rater's
    /// active period …
    pub drift: f64,
    /// … and the trend is this many standard errors from zero.
    pub drift_z: f64,
    /// `RECOMMENDATION_MISMATCH` when at least this share of scorecards' recommendations
    /// contradict their ratings.
    pub mismatch_share: f64,
    /// A recommendation contradicts its ratings when they sit this far (0..1 units,
    /// after the rater's severity) on the other side of the organisation's average.
    pub mismatch_margin: f64,
    /// `THIN_EVIDENCE` when at least this share of a rater's evidence is thin.
    pub thin_share: f64,
    /// A rater differential (ComplianceService.ListRaterDifferentials) is
    /// flagged when the difference exceeds this share of the scale's span …
    pub differential: f64,
    /// … with at least this many scorecards on each side of the comparison …
    pub differential_min_scorecards: u32,
    /// … and survives Benjamini–Hochberg at this false-discovery rate over
    /// every rater and comparison of the organisation.
    pub differential_fdr: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_ratings: 15,
            min_shared_candidates: 4,
            severity: 0.19,
            noise_ratio: 1.6,
            halo_ratio: 0.35,
            range_use: 0.6,
            drift: 0.2,
            drift_z: 3.0,
            mismatch_share: 0.3,
            mismatch_margin: 0.1,
            thin_share: 0.5,
            differential: 0.1,
            differential_min_scorecards: 5,
            differential_fdr: 0.1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlagKind {
    InsufficientData,
    Severe,
    Lenient,
    Inconsistent,
    Halo,
    CentralTendency,
    Drift,
    RecommendationMismatch,
    ThinEvidence,
}

impl FlagKind {
    /// The flag's name as recruiters, events and the API read it: `SEVERE`
    /// (the proto enum is `KIND_` + this).
    pub fn name(self) -> &'static str {
        match self {
            FlagKind::InsufficientData => "INSUFFICIENT_DATA",
            FlagKind::Severe => "SEVERE",
            FlagKind::Lenient => "LENIENT",
            FlagKind::Inconsistent => "INCONSISTENT",
            FlagKind::Halo => "HALO",
            FlagKind::CentralTendency => "CENTRAL_TENDENCY",
            FlagKind::Drift => "DRIFT",
            FlagKind::RecommendationMismatch => "RECOMMENDATION_MISMATCH",
            FlagKind::ThinEvidence => "THIN_EVIDENCE",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub kind: FlagKind,
    pub detail: String,
}

/// What the engine knows of one scorecard beyond its ratings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScorecardFacts {
    pub rater: u32,
    pub subject: u32,
    /// 1 strong no … 4 strong yes.
    pub recommendation: u8,
    /// Ratings whose evidence is thin (see [`evidence_is_thin`]).
    pub thin_evidence: u32,
    pub ratings: u32,
    /// `max - min` of the rubric scale it was scored on.
    pub scale_span: f64,
}

/// One rater's report. Severity, noise and drift are in scale points of the
/// scales the rater used (weighted by their ratings).
#[derive(Debug, Clone, PartialEq)]
pub struct RaterReport {
    pub rater: u32,
    pub rating_count: u32,
    pub severity: f64,
    pub severity_lower: f64,
    pub severity_upper: f64,
    pub noise: f64,
    pub halo: f64,
    pub range_use: f64,
    /// Scale points per year.
    pub drift: f64,
    /// Share of scorecards whose recommendation agrees with the ratings.
    pub recommendation_agreement: f64,
    /// Share of ratings with substantive, behavioural evidence.
    pub evidence_quality: f64,
    pub flags: Vec<Flag>,
}

/// Words that judge character rather than describe behaviour.
const TRAIT_WORDS: [&str; 16] = [
    "smart",
    "genius",
    "nice",
    "arrogant",
    "lazy",
    "likeable",
    "likable",
    "personality",
    "attitude",
    "vibe",
    "culture fit",
    "gut",
    "brilliant",
    "weird",
    "rockstar",
    "ninja",
];

/// Evidence is thin when it is too short to describe what happened (fewer than
/// eight words), or judges character (a trait word) without room for behaviour
/// (fewer than twenty words). Erased evidence (empty) is not judged.
pub fn evidence_is_thin(text: &str) -> bool {
    let words = text.split_whitespace().count();
    if words == 0 {
        return false;
    }
    if words < 8 {
        return true;
    }
    let lower = text.to_lowercase();
    words < 20 && TRAIT_WORDS.iter().any(|w| lower.contains(w))
}

struct Regression {
    slope: f64,
    intercept: f64,
    residual_var: f64,
}

/// A least-squares line fitted as its points stream by (means and
/// co-moments updated one point at a time, Welford's way), so that twenty
/// thousand raters' ten million ratings need not be held at once.
#[derive(Debug, Default, Clone, Copy)]
struct Line {
    n: f64,
    mx: f64,
    my: f64,
    sxx: f64,
    sxy: f64,
    syy: f64,
}

impl Line {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        let (dx, dy) = (x - self.mx, y - self.my);
        self.mx += dx / self.n;
        self.my += dy / self.n;
        self.sxx += dx * (x - self.mx);
        self.sxy += dx * (y - self.my);
        self.syy += dy * (y - self.my);
    }

    /// Adds another line's points (Chan, Golub and LeVeque's pairwise update).
    fn merge(&mut self, other: &Line) {
        if other.n == 0.0 {
            return;
        }
        if self.n == 0.0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        let (dx, dy) = (other.mx - self.mx, other.my - self.my);
        let weight = self.n * other.n / n;
        self.sxx += other.sxx + dx * dx * weight;
        self.sxy += other.sxy + dx * dy * weight;
        self.syy += other.syy + dy * dy * weight;
        self.mx += dx * other.n / n;
        self.my += dy * other.n / n;
        self.n = n;
    }

    fn fit(&self) -> Option<Regression> {
        if self.n < 3.0 || self.sxx < 1e-12 {
            return None;
        }
        let slope = self.sxy / self.sxx;
        let rss = (self.syy - slope * self.sxy).max(0.0);
        Some(Regression { slope, intercept: self.my - slope * self.mx, residual_var: rss / (self.n - 2.0) })
    }
}

fn regress(points: &[(f64, f64)]) -> Option<Regression> {
    let mut line = Line::default();
    for &(x, y) in points {
        line.add(x, y);
    }
    line.fit()
}

/// Per rater, the panel's view of each of their ratings (leaving the rater
/// out), summed as it streams by: the rating against the candidate's general
/// level and against the panel's level on the item.
#[derive(Debug, Default, Clone, Copy)]
struct RaterLines {
    /// (candidate's general level, the model's expectation of the latent
    /// judgement behind the rating: a 5 from a rater who expected 6 is a 6
    /// latent, not a 5), less item mean and severity.
    by_ability: Line,
    /// (panel's level θ on the item, the rating), less item mean and severity.
    by_theta: Line,
}

/// One of a rater's scorecards as the panel's view without them saw it:
/// what the drift trend needs.
#[derive(Debug, Default, Clone, Copy)]
struct Card {
    rater: u32,
    scorecard: u32,
    time: f64,
    /// Σ rating less item mean and severity.
    y: f64,
    /// Σ the panel's level θ.
    theta: f64,
    ratings: u32,
}

/// A rater's ratings of one candidate: what their recommendations are judged
/// against. Every candidate of the rater's, seen by others or not.
#[derive(Debug, Default, Clone, Copy)]
struct SubjectSum {
    rater: u32,
    subject: u32,
    /// Σ rating less item mean and severity.
    sum: f64,
    ratings: u32,
}

/// Rows of every rater, grouped by rater (rater `r`'s are
/// `rows[start[r]..start[r + 1]]`), each rater's in the order they were seen.
#[derive(Debug, Default)]
struct ByRater<T> {
    rows: Vec<T>,
    start: Vec<usize>,
}

impl<T: Copy + Default> ByRater<T> {
    /// Groups the runs' rows by rater, stably (a counting sort): one pass and
    /// one allocation, where a growing list per rater and run cost a tenth of
    /// a 10M-rating organisation's reports in the allocator.
    fn group(raters: usize, runs: Vec<Vec<T>>, rater_of: impl Fn(&T) -> u32) -> ByRater<T> {
        let mut start = vec![0usize; raters + 1];
        for row in runs.iter().flatten() {
            start[rater_of(row) as usize + 1] += 1;
        }
        for r in 0..raters {
            start[r + 1] += start[r];
        }
        let mut rows = vec![T::default(); start[raters]];
        let mut next = start.clone();
        for row in runs.into_iter().flatten() {
            let at = &mut next[rater_of(&row) as usize];
            rows[*at] = row;
            *at += 1;
        }
        ByRater { rows, start }
    }

    fn of(&self, r: usize) -> &[T] {
        &self.rows[self.start[r]..self.start[r + 1]]
    }
}

/// Every rater's panel sums, how many of their candidates others also rated,
/// and (observed within-scorecard variance, expected) for halo.
#[derive(Debug, Default)]
struct Panel {
    lines: Vec<RaterLines>,
    cards: Vec<Card>,
    subjects: Vec<SubjectSum>,
    shared: Vec<u32>,
    halo: Vec<(f64, f64)>,
}

/// The whole organisation's panel, each rater's rows together.
struct RaterPanels {
    lines: Vec<RaterLines>,
    cards: ByRater<Card>,
    subjects: ByRater<SubjectSum>,
    shared: Vec<u32>,
    halo: Vec<(f64, f64)>,
}

/// The subjects are cut into this many runs, summed in parallel and merged in
/// order: a fixed number, so the figures do not depend on the machine's cores.
const PANEL_RUNS: usize = 8;

impl Panel {
    fn new(raters: usize) -> Panel {
        Panel {
            lines: vec![RaterLines::default(); raters],
            shared: vec![0; raters],
            halo: vec![(0.0, 0.0); raters],
            ..Panel::default()
        }
    }

    /// The whole organisation's panel: every subject's leave-one-rater-out
    /// views (one model solve per subject and rater, most of a report's cost),
    /// on every core.
    fn of(model: &Model) -> RaterPanels {
        let subjects = model.subject_count();
        let runs: Vec<std::ops::Range<u32>> = (0..PANEL_RUNS)
            .map(|i| (i * subjects / PANEL_RUNS) as u32..((i + 1) * subjects / PANEL_RUNS) as u32)
            .collect();
        Panel::merge(model.rater_count(), on_every_core(runs, |run| Panel::over(model, run)))
    }

    /// The panel of a run of subjects. Subject by subject, each rater's
    /// leave-one-out view ([`Model::for_each_panel_view`]).
    fn over(model: &Model, subjects: std::ops::Range<u32>) -> Panel {
        let mut panel = Panel::new(model.rater_count());
        // (scorecard, rating, panel's level) of the rater's ratings in a view.
        let mut pairs: Vec<(u32, f64, f64)> = Vec::new();
        let mut views = PanelViews::default();
        for c in subjects {
            model.for_each_panel_view_into(c, &mut views, |r, post| {
                let severity = model.severity[r as usize];
                let (mut sum, mut count) = (0.0, 0);
                for o in model.ratings(c).iter().filter(|o| o.rater == r) {
                    sum += o.value() - model.item_mean[o.item as usize] - severity;
                    count += 1;
                }
                panel.subjects.push(SubjectSum { rater: r, subject: c, sum, ratings: count });
                if post.items.is_empty() {
                    return; // nobody else rated this candidate: no panel view
                }
                panel.shared[r as usize] += 1;
                pairs.clear();
                let first_card = panel.cards.len();
                for o in model.ratings(c).iter().filter(|o| o.rater == r) {
                    let (theta, _) = post.level(model, o.item);
                    let mu = model.item_mean[o.item as usize];
                    let (y, latent) =
                        (o.value() - mu - model.severity[r as usize], o.latent() - mu - model.severity[r as usize]);
                    let lines = &mut panel.lines[r as usize];
                    lines.by_ability.add(post.ability, latent);
                    lines.by_theta.add(theta, y);
                    // A scorecard's ratings all come in this one view.
                    match panel.cards[first_card..].iter_mut().find(|card| card.scorecard == o.scorecard) {
                        Some(card) => {
                            card.y += y;
                            card.theta += theta;
                            card.ratings += 1;
                        }
                        None => panel.cards.push(Card {
                            rater: r,
                            scorecard: o.scorecard,
                            time: o.time(),
                            y,
                            theta,
                            ratings: 1,
                        }),
                    }
                    pairs.push((o.scorecard, o.value(), mu + theta));
                }
                // Within each scorecard of two or more ratings: the spread of the
                // rater's scores against the spread of the panel's levels.
                pairs.sort_by_key(|p| p.0);
                for card in pairs.chunk_by(|a, b| a.0 == b.0).filter(|card| card.len() >= 2) {
                    let var = |f: &dyn Fn(&(u32, f64, f64)) -> f64| {
                        let m = card.iter().map(f).sum::<f64>() / card.len() as f64;
                        card.iter().map(|p| (f(p) - m).powi(2)).sum::<f64>() / (card.len() - 1) as f64
                    };
                    panel.halo[r as usize].0 += var(&|p| p.1);
                    panel.halo[r as usize].1 += var(&|p| p.2) + model.hyper.noise;
                }
            });
        }
        panel
    }

    /// The runs' sums, in their order (each run's subjects after the last's).
    fn merge(raters: usize, runs: Vec<Panel>) -> RaterPanels {
        let mut lines = vec![RaterLines::default(); raters];
        let mut shared = vec![0; raters];
        let mut halo = vec![(0.0, 0.0); raters];
        let mut cards = Vec::with_capacity(runs.len());
        let mut subjects = Vec::with_capacity(runs.len());
        for run in runs {
            for (mine, theirs) in lines.iter_mut().zip(&run.lines) {
                mine.by_ability.merge(&theirs.by_ability);
                mine.by_theta.merge(&theirs.by_theta);
            }
            shared.iter_mut().zip(run.shared).for_each(|(a, b)| *a += b);
            halo.iter_mut().zip(run.halo).for_each(|(a, b)| {
                a.0 += b.0;
                a.1 += b.1;
            });
            cards.push(run.cards);
            subjects.push(run.subjects);
        }
        RaterPanels {
            lines,
            cards: ByRater::group(raters, cards, |c| c.rater),
            subjects: ByRater::group(raters, subjects, |s| s.rater),
            shared,
            halo,
        }
    }
}

/// Reports for every rater with at least one rating.
pub fn reports(model: &Model, scorecards: &[ScorecardFacts], t: &Thresholds) -> Vec<RaterReport> {
    let raters = model.rater_count();
    let panels = Panel::of(model);

    // The rater's regressions on the panel's view, and their noise, for every
    // rater, to compare with the median.
    let fitted: Vec<Option<(Regression, Regression, f64)>> = panels
        .lines
        .iter()
        .enumerate()
        .map(|(r, p)| {
            // Range use on the latent scale: the ends of an ordinal scale
            // compress every rater's ratings of strong and weak candidates, most
            // on short scales, which is not the rater's central tendency.
            let by_ability = p.by_ability.fit()?;
            let by_theta = p.by_theta.fit()?;
            // Noise on the latent scale too: the model's σ_r, how far the
            // rater's judgement scatters around the candidate's level after
            // their severity, range use and occasion. The scatter of the
            // ratings themselves mixes it with the rounding to whole points,
            // which every rater shares: on a 1..4 scale that hid a third of
            // the difference between a noisy rater and the rest (a rater 2.6
            // times as noisy scattered 1.5–1.6 times as much).
            Some((by_ability, by_theta, model.noise_var[r].sqrt()))
        })
        .collect();
    let mut noises: Vec<f64> = fitted
        .iter()
        .enumerate()
        .filter(|(r, f)| f.is_some() && model.rating_count[*r] >= t.min_ratings)
        .filter_map(|(_, f)| f.as_ref().map(|x| x.2))
        .collect();
    noises.sort_by(f64::total_cmp);
    let median_noise = if noises.is_empty() { None } else { Some(noises[noises.len() / 2]) };

    // Each rater's scorecards, in one pass (filtering all scorecards once per
    // rater was raters × scorecards: 123 s for 20,000 raters' reports).
    let own = ByRater::group(
        raters,
        vec![(0..scorecards.len()).filter(|&i| (scorecards[i].rater as usize) < raters).collect()],
        |&i| scorecards[i].rater,
    );
    let RaterPanels { mut cards, subjects, shared, halo, .. } = panels;
    let context = Context {
        model,
        t,
        scorecards,
        own: &own,
        fitted: &fitted,
        median_noise,
        subjects: &subjects,
        shared: &shared,
        halo: &halo,
    };
    // The raters are independent: cut into contiguous runs (each with its
    // raters' scorecards), their reports concatenated in rater order.
    let mut runs: Vec<(std::ops::Range<usize>, &mut [Card])> = Vec::with_capacity(PANEL_RUNS);
    let mut rest = cards.rows.as_mut_slice();
    for i in 0..PANEL_RUNS {
        let raters_of_run = i * raters / PANEL_RUNS..(i + 1) * raters / PANEL_RUNS;
        let len = cards.start[raters_of_run.end] - cards.start[raters_of_run.start];
        let (mine, after) = std::mem::take(&mut rest).split_at_mut(len);
        rest = after;
        runs.push((raters_of_run, mine));
    }
    let start = &cards.start;
    on_every_core(runs, |(raters_of_run, mine)| {
        let base = start[raters_of_run.start];
        raters_of_run
            .filter_map(|r| report_of(&context, r, &mut mine[start[r] - base..start[r + 1] - base]))
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// What every rater's report reads.
#[derive(Clone, Copy)]
struct Context<'a> {
    model: &'a Model,
    t: &'a Thresholds,
    scorecards: &'a [ScorecardFacts],
    /// Indices into `scorecards`, by rater.
    own: &'a ByRater<usize>,
    fitted: &'a [Option<(Regression, Regression, f64)>],
    median_noise: Option<f64>,
    subjects: &'a ByRater<SubjectSum>,
    shared: &'a [u32],
    halo: &'a [(f64, f64)],
}

/// Rater `r`'s report (`None` for a rater with no rating); `cards` are the
/// rater's, sorted here by scorecard.
fn report_of(context: &Context, r: usize, cards: &mut [Card]) -> Option<RaterReport> {
    let Context { model, t, fitted, median_noise, subjects, shared, halo, .. } = *context;
    let n = model.rating_count[r];
    if n == 0 {
        return None;
    }
    let own: Vec<&ScorecardFacts> = context.own.of(r).iter().map(|&i| &context.scorecards[i]).collect();
    let span = {
        let total: f64 = own.iter().map(|s| s.scale_span * f64::from(s.ratings)).sum();
        let count: f64 = own.iter().map(|s| f64::from(s.ratings)).sum();
        if count > 0.0 { total / count } else { 1.0 }
    };
    let severity = model.severity[r];
    let half = Z90 * model.severity_var[r].sqrt();
    let (range_use, noise_norm, drift_per_year, drift_total, drift_z) = match &fitted[r] {
        None => (1.0, model.noise_var[r].sqrt(), 0.0, 0.0, 0.0),
        Some((by_ability, by_theta, noise)) => {
            // One residual per scorecard (their mean): the ratings of one
            // scorecard share its time and its occasion, so as separate
            // points they would overstate how sure the trend is, most for
            // a rater who gives every competency the same score.
            cards.sort_unstable_by_key(|c| c.scorecard);
            let residuals: Vec<(f64, f64)> = cards
                .iter()
                .map(|c| {
                    let n = f64::from(c.ratings);
                    (c.time, (c.y - n * by_theta.intercept - by_theta.slope * c.theta) / n)
                })
                .collect();
            let (drift, total, z) = match regress(&residuals) {
                Some(trend) => {
                    let n = residuals.len() as f64;
                    let mt = residuals.iter().map(|p| p.0).sum::<f64>() / n;
                    let stt: f64 = residuals.iter().map(|p| (p.0 - mt).powi(2)).sum();
                    let se = (trend.residual_var / stt).sqrt();
                    let (lo, hi) = residuals
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
                    (trend.slope, trend.slope * (hi - lo), if se > 0.0 { trend.slope / se } else { 0.0 })
                }
                None => (0.0, 0.0, 0.0),
            };
            (by_ability.slope, *noise, drift, total, z)
        }
    };
    let halo_ratio = if halo[r].1 > 0.0 { halo[r].0 / halo[r].1 } else { 1.0 };

    let mut mismatches = 0u32;
    let mut judged = 0u32;
    let by_subject = subjects.of(r);
    for s in &own {
        let Ok(at) = by_subject.binary_search_by_key(&s.subject, |x| x.subject) else { continue };
        let SubjectSum { sum, ratings: count, .. } = by_subject[at];
        if count == 0 {
            continue;
        }
        let m = sum / f64::from(count);
        let positive = s.recommendation >= 3;
        judged += 1;
        if (positive && m < -t.mismatch_margin) || (!positive && m > t.mismatch_margin) {
            mismatches += 1;
        }
    }
    let agreement = if judged > 0 { 1.0 - f64::from(mismatches) / f64::from(judged) } else { 1.0 };
    let thin: u32 = own.iter().map(|s| s.thin_evidence).sum();
    let rated: u32 = own.iter().map(|s| s.ratings).sum();
    let quality = if rated > 0 { 1.0 - f64::from(thin) / f64::from(rated) } else { 1.0 };

    let mut flags = Vec::new();
    let points_of = |x: f64| x * span;
    if n < t.min_ratings || shared[r] < t.min_shared_candidates {
        flags.push(Flag {
            kind: FlagKind::InsufficientData,
            detail: format!(
                "{n} ratings of {} candidates also seen by others; at least {} and {} are needed to judge.",
                shared[r], t.min_ratings, t.min_shared_candidates
            ),
        });
    } else {
        if severity + half < -t.severity {
            flags.push(Flag {
                kind: FlagKind::Severe,
                detail: format!(
                    "Rates {:.2} points below the organisation's average interviewer (90% interval {:.2} to {:.2}).",
                    -points_of(severity),
                    -points_of(severity + half),
                    -points_of(severity - half)
                ),
            });
        } else if severity - half > t.severity {
            flags.push(Flag {
                kind: FlagKind::Lenient,
                detail: format!(
                    "Rates {:.2} points above the organisation's average interviewer (90% interval {:.2} to {:.2}).",
                    points_of(severity),
                    points_of(severity - half),
                    points_of(severity + half)
                ),
            });
        }
        if let Some(median) = median_noise
            && noise_norm > t.noise_ratio * median
        {
            flags.push(Flag {
                kind: FlagKind::Inconsistent,
                detail: format!(
                    "Their judgement scatters {:.2} points around the candidate's level, after their severity and range use: {:.1}× the organisation's typical {:.2}.",
                    points_of(noise_norm),
                    noise_norm / median,
                    points_of(median)
                ),
            });
        }
        if range_use < t.range_use {
            flags.push(Flag {
                kind: FlagKind::CentralTendency,
                detail: format!(
                    "Uses a compressed range: scores move {range_use:.2} points per point of difference the panel sees between candidates."
                ),
            });
        } else if halo_ratio < t.halo_ratio {
            flags.push(Flag {
                kind: FlagKind::Halo,
                detail: format!(
                    "Gives a candidate nearly the same score on every competency: {:.0}% of the spread the panel's view predicts.",
                    100.0 * halo_ratio
                ),
            });
        }
        if drift_total.abs() > t.drift && drift_z.abs() > t.drift_z {
            flags.push(Flag {
                kind: FlagKind::Drift,
                detail: format!(
                    "Severity moved {:+.2} points over the rated period ({:+.2} points per year).",
                    points_of(drift_total),
                    points_of(drift_per_year)
                ),
            });
        }
        if judged >= 5 && f64::from(mismatches) / f64::from(judged) >= t.mismatch_share {
            flags.push(Flag {
                kind: FlagKind::RecommendationMismatch,
                detail: format!("{mismatches} of {judged} recommendations contradict the scorecard's own ratings."),
            });
        }
        if rated > 0 && f64::from(thin) / f64::from(rated) >= t.thin_share {
            flags.push(Flag {
                kind: FlagKind::ThinEvidence,
                detail: format!(
                    "{thin} of {rated} ratings have thin evidence: too short, or about character rather than what the candidate did."
                ),
            });
        }
    }
    Some(RaterReport {
        rater: r as u32,
        rating_count: n,
        severity: points_of(severity),
        severity_lower: points_of(severity - half),
        severity_upper: points_of(severity + half),
        noise: points_of(noise_norm),
        halo: halo_ratio,
        range_use,
        drift: points_of(drift_per_year),
        recommendation_agreement: agreement,
        evidence_quality: quality,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_by_rater_keeps_each_raters_rows_in_the_runs_order() {
        let runs = vec![vec![(2u32, 'a'), (0, 'b'), (2, 'c')], vec![], vec![(1, 'd'), (2, 'e'), (0, 'f')]];
        let grouped = ByRater::group(4, runs, |row| row.0);
        assert_eq!(grouped.of(0), &[(0, 'b'), (0, 'f')]);
        assert_eq!(grouped.of(1), &[(1, 'd')]);
        assert_eq!(grouped.of(2), &[(2, 'a'), (2, 'c'), (2, 'e')]);
        assert!(grouped.of(3).is_empty());
        assert_eq!(grouped.start, vec![0, 2, 3, 6, 6]);
    }

    #[test]
    fn a_streamed_line_is_the_least_squares_line() {
        // y = 1 + 2x with residuals +0.1, −0.2, +0.1, 0, 0 around it, far from
        // the origin, where naive sums of squares would lose digits.
        let points: Vec<(f64, f64)> = [0.1, -0.2, 0.1, 0.0, 0.0]
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let x = 1e6 + i as f64;
                (x, 1.0 + 2.0 * x + e)
            })
            .collect();
        let line = regress(&points).expect("five points");
        // The two-pass textbook formulas.
        let (mx, my) = (1e6 + 2.0, points.iter().map(|p| p.1).sum::<f64>() / 5.0);
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let slope = sxy / sxx;
        let rss: f64 = points.iter().map(|p| (p.1 - (my - slope * mx) - slope * p.0).powi(2)).sum();
        assert!((line.slope - slope).abs() < 1e-9, "{} {slope}", line.slope);
        assert!((line.intercept - (my - slope * mx)).abs() < 1e-3);
        assert!((line.residual_var - rss / 3.0).abs() < 1e-9, "{} {}", line.residual_var, rss / 3.0);
        // Two runs merged are the whole.
        let (mut first, mut second) = (Line::default(), Line::default());
        points[..2].iter().for_each(|&(x, y)| first.add(x, y));
        points[2..].iter().for_each(|&(x, y)| second.add(x, y));
        first.merge(&second);
        let merged = first.fit().expect("five points");
        assert!((merged.slope - line.slope).abs() < 1e-9 && (merged.residual_var - line.residual_var).abs() < 1e-9);
        assert!(regress(&points[..2]).is_none(), "two points leave no residual");
        assert!(regress(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none(), "no spread in x");
    }

    #[test]
    fn thin_evidence_rules() {
        assert!(evidence_is_thin("Good."));
        assert!(evidence_is_thin("Seems smart and has a great attitude overall, I think"));
        assert!(!evidence_is_thin(""), "erased evidence is not judged");
        assert!(!evidence_is_thin(
            "Walked through the cache invalidation bug, wrote a failing test first, then fixed the TTL handling."
        ));
    }

    /// A rater who gives every competency on a scorecard the same score has
    /// one judgement per scorecard, not four: the drift trend is judged on
    /// scorecards, so a steady halo rater's day-to-day swings are not a drift.
    /// (Judged on ratings, 9 of these 480 steady halo raters were flagged; 1 now.)
    #[test]
    fn steady_halo_raters_are_not_flagged_for_drift() {
        use crate::calibration::synthetic::{Org, RaterKind, Spec};
        let (mut halo_raters, mut flagged) = (0, 0);
        for seed in 31..51 {
            let mut spec = Spec::reference(seed);
            spec.points = 4;
            spec.raters = [vec![RaterKind::Normal; 12], vec![RaterKind::Halo; 24]].concat();
            let mut org = Org::generate(&spec);
            org.model.fit(200, 1e-4);
            for report in reports(&org.model, &org.scorecards, &Thresholds::default()) {
                if org.rater_kinds[report.rater as usize] == RaterKind::Halo {
                    halo_raters += 1;
                    flagged += usize::from(report.flags.iter().any(|f| f.kind == FlagKind::Drift));
                }
            }
        }
        assert_eq!(halo_raters, 480);
        assert!(flagged <= 2, "{flagged} of {halo_raters} steady halo raters flagged for drift");
    }
}

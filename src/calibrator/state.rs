//! One organisation's calibration state: the model, dense indexes of raters,
//! subjects, items and scorecards, per-job rankings kept up to date between
//! requests, and the rater-report cache.

use std::collections::HashMap;
use std::sync::Arc;

use crate::calibration::Index;
use crate::calibration::decisions::{self, ScoreDistribution};
use crate::calibration::model::{Model, NO_GROUP, Obs};
use crate::calibration::raters::{RaterReport, ScorecardFacts};
use crate::calibration::scores::{DimensionShape, Groups, JobRanking, RubricShape, Score};
use crate::domain::{Micros, Rubric, Scorecard, now_micros};

/// Spread (0..1 units) of a candidate's per-scorecard averages, after rater
/// severity, above which the ranking says the panel disagrees.
pub(super) const DISAGREEMENT: f64 = 0.15;

/// The model's numbers for scorecard ids, given on first sight and never looked
/// up backwards. Ids are the service's own 32-hex-digit UUIDs, kept as 16 bytes
/// in the table itself: 200,000 ids as strings were 200,000 small allocations,
/// copied at every refit and left behind as holes in the heap. Any other id (an
/// older database, a test) is kept as a string.
#[derive(Debug, Default)]
pub(super) struct ScorecardNumbers {
    pub(super) uuids: HashMap<[u8; 16], u32>,
    pub(super) others: HashMap<Box<str>, u32>,
}

impl ScorecardNumbers {
    pub(super) fn uuid(id: &str) -> Option<[u8; 16]> {
        let digits = id.as_bytes();
        if digits.len() != 32 || !digits.iter().all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u128::from_str_radix(id, 16).ok().map(u128::to_be_bytes)
    }

    pub(super) fn get(&self, id: &str) -> Option<u32> {
        match Self::uuid(id) {
            Some(key) => self.uuids.get(&key).copied(),
            None => self.others.get(id).copied(),
        }
    }

    pub(super) fn get_or_insert(&mut self, id: &str) -> u32 {
        let next = (self.uuids.len() + self.others.len()) as u32;
        match Self::uuid(id) {
            Some(key) => *self.uuids.entry(key).or_insert(next),
            None => match self.others.get(id) {
                Some(&n) => n,
                None => {
                    self.others.insert(id.into(), next);
                    next
                }
            },
        }
    }
}

/// A job as calibration sees it: its rubric revision's shape.
#[derive(Debug, Clone)]
pub(super) struct JobInfo {
    /// The job's id, shared by the keys of all its subjects.
    pub(super) key: Arc<str>,
    pub(super) shape: RubricShape,
    /// Shared by every entry of the job's ranking snapshots.
    pub(super) dimension_keys: Vec<Arc<str>>,
    pub(super) rubric_id: String,
    /// competency key → model item
    pub(super) items: HashMap<String, u32>,
    /// model item → its dimension in the model (see [`RubricShape::item_groups`]).
    pub(super) item_groups: HashMap<u32, u32>,
    pub(super) scale: (i32, i32),
}

/// Rater reports by rater id, sorted by id.
pub type RaterReports = Vec<(String, RaterReport)>;

/// One entry of a cached ranking. The strings are shared with the
/// organisation's state (a snapshot of a 51,000-candidate job was 200,000 small
/// allocations when each entry had its own).
#[derive(Debug, Clone, PartialEq)]
pub struct RankedEntry {
    pub candidate_id: Arc<str>,
    pub overall: Score,
    /// (dimension key, score if assessed)
    pub dimensions: Vec<(Arc<str>, Option<Score>)>,
    pub scorecard_count: u32,
    pub flags: Vec<String>,
    /// The overall score's posterior distribution.
    pub distribution: ScoreDistribution,
    /// P(overall ≥ the job's bar); `None` without a bar.
    pub p_above_bar: Option<f64>,
    /// 1 = top; see [`decisions::tiers`].
    pub tier: u32,
    /// Its group of candidates linked by shared interviewers: candidates of
    /// different groups cannot be compared.
    pub group: u32,
}

/// One (job, candidate) pair with at least one scorecard, as the
/// adverse-impact report counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectSummary {
    pub job: Arc<str>,
    pub candidate: Arc<str>,
    /// When its first scorecard was submitted.
    pub first_submitted_at: Micros,
    pub scorecards: u32,
    /// Scorecards recommending YES or STRONG_YES.
    pub recommending: u32,
}

/// A job's ranking at one state version.
#[derive(Debug, Clone)]
pub struct Ranking {
    pub entries: Vec<RankedEntry>,
    pub calibrated_at: Micros,
    pub hiring_bar: Option<f64>,
}

/// One competency's calibrated score for one candidate.
#[derive(Debug, Clone)]
pub struct CompetencyAssessment {
    pub key: String,
    pub score: Score,
}

/// A job's ranking as maintained between requests.
#[derive(Debug, Default)]
pub(super) struct JobCache {
    pub(super) ranking: JobRanking,
    /// Subjects rescored by updates since the ranking was last brought up to date.
    pub(super) pending: std::collections::HashSet<u32>,
    /// Everything changed (a full fit): rebuild before use.
    pub(super) stale: bool,
    pub(super) snapshot: Option<(u64, Arc<Ranking>)>,
}

/// What calibration needs of a scorecard besides its ratings.
#[derive(Debug, Clone, Copy)]
pub(super) struct CardKeys<'a> {
    pub(super) scorecard_id: &'a str,
    pub(super) job_id: &'a str,
    pub(super) candidate_id: &'a str,
    pub(super) interviewer: &'a str,
    /// 1 strong no … 4 strong yes.
    pub(super) recommendation: i64,
    pub(super) submitted_at: Micros,
}

/// Everything calibrated about one organisation.
pub(super) struct OrgState {
    /// Shared copy-on-write: a long read (rater reports, differentials, a
    /// plan) holds the fitted state without copying it, and a write made
    /// while it runs copies it then (see [`OrgState::model_mut`]).
    pub(super) model: Arc<Model>,
    pub(super) raters: Index<String>,
    /// (job, candidate) per subject; the job's id is one shared string.
    pub(super) subjects: Index<(Arc<str>, Arc<str>)>,
    pub(super) items: Index<(String, String)>,
    /// Scorecard id → the model's number for it.
    pub(super) scorecards: ScorecardNumbers,
    pub(super) facts: Vec<Option<ScorecardFacts>>,
    /// Per scorecard number: when it was first submitted (its revisions keep it).
    pub(super) submitted_at: Vec<Micros>,
    pub(super) jobs: HashMap<String, JobInfo>,
    pub(super) version: u64,
    pub(super) calibrated_at: Micros,
    /// Groups of candidates linked by shared interviewers.
    pub(super) groups: Groups,
    /// Per job: the incrementally maintained ranking and its last snapshot.
    pub(super) rankings: HashMap<String, JobCache>,
    pub(super) reports: Option<(u64, Arc<RaterReports>)>,
    /// Every scorecard change up to this event sequence is reflected here
    /// (changes through other replicas are caught up from the event log).
    pub(super) synced_sequence: i64,
    /// Per scorecard number: the revision reflected here by a change through
    /// this replica (0: as loaded), so catching up skips its own changes.
    pub(super) applied_revisions: Vec<i64>,
    /// While a reload of the organisation is in flight: every change applied
    /// here since it began, to replay onto the reloaded state (a change that
    /// commits after the reload read the database would otherwise be lost
    /// when the reloaded state replaces this one).
    pub(super) reload_journal: Option<Vec<Arc<Committed>>>,
    /// While a background refit is in flight: the model changes made since it
    /// copied the model, to replay onto the fitted copy instead of discarding it.
    pub(super) refit_journal: Option<Vec<ModelChange>>,
    /// Replaced by a reload: updates go to the state that replaced this one.
    pub(super) retired: bool,
}

/// A committed scorecard with the rubric revision it was rated on, as the
/// calibrator applies it.
pub(super) struct Committed {
    pub(super) scorecard: Scorecard,
    pub(super) rubric: Arc<Rubric>,
}

/// One scorecard's change to the model, replayable onto another copy of it.
pub(super) struct ModelChange {
    pub(super) subject: u32,
    pub(super) scorecard: u32,
    pub(super) rater: u32,
    pub(super) steps: u32,
    pub(super) obs: Vec<Obs>,
    /// Each rating's item's dimension in the model, parallel to `obs`.
    pub(super) item_groups: Vec<u32>,
}

impl ModelChange {
    /// Applies the change to `model` with its local update; returns the
    /// subjects the update rescored (`None`: all).
    pub(super) fn replay(&self, model: &mut Model, groups: &mut Groups) -> Option<Vec<u32>> {
        for (o, &group) in self.obs.iter().zip(&self.item_groups) {
            model.set_item_steps(o.item, self.steps);
            model.set_item_group(o.item, group);
        }
        let mut touched = model.remove_scorecard(self.subject, self.scorecard);
        model.add(self.subject, &self.obs);
        groups.link(self.subject, self.rater);
        touched.push(self.rater);
        touched.sort_unstable();
        touched.dedup();
        model.update_locally(self.subject, &touched)
    }
}

impl OrgState {
    /// The model, for a change: copied first only while a long read still
    /// holds the state it started from.
    pub(super) fn model_mut(&mut self) -> &mut Model {
        Arc::make_mut(&mut self.model)
    }

    pub(super) fn new() -> Self {
        OrgState {
            model: Arc::new(Model::new()),
            raters: Index::default(),
            subjects: Index::default(),
            items: Index::default(),
            scorecards: ScorecardNumbers::default(),
            facts: Vec::new(),
            submitted_at: Vec::new(),
            jobs: HashMap::new(),
            version: 0,
            calibrated_at: now_micros(),
            groups: Groups::default(),
            rankings: HashMap::new(),
            reports: None,
            synced_sequence: 0,
            applied_revisions: Vec::new(),
            reload_journal: None,
            refit_journal: None,
            retired: false,
        }
    }

    /// Ranks every job now, so that no first read after a start-up or a
    /// reload pays for building a ranking (36 ms at 10,000 candidates).
    pub(super) fn rank_every_job(&mut self, bars: &HashMap<String, Option<f64>>) {
        let jobs: Vec<String> = self.jobs.keys().cloned().collect();
        for (job, ranking) in JobRanking::build_all(&self.model, self.ranking_inputs(jobs)) {
            self.rankings.insert(job.clone(), JobCache { ranking, ..JobCache::default() });
            self.ranking(&job, bars.get(&job).copied().flatten()); // and its snapshot
        }
    }

    pub(super) fn job_info(job_id: &str, rubric: &Rubric, items: &mut Index<(String, String)>) -> JobInfo {
        let c = &rubric.content;
        let mut map = HashMap::new();
        let dimensions = c
            .dimensions
            .iter()
            .map(|d| DimensionShape {
                weight: d.weight,
                items: c
                    .competencies
                    .iter()
                    .filter(|k| k.dimension_key == d.key)
                    .map(|k| {
                        let item = items.get_or_insert(&(rubric.id.clone(), k.key.clone()));
                        map.insert(k.key.clone(), item);
                        (item, k.weight)
                    })
                    .collect(),
            })
            .collect();
        let shape = RubricShape { scale_min: f64::from(c.scale.min), scale_max: f64::from(c.scale.max), dimensions };
        JobInfo {
            key: Arc::from(job_id),
            item_groups: shape.item_groups().into_iter().collect(),
            shape,
            dimension_keys: c.dimensions.iter().map(|d| Arc::from(d.key.as_str())).collect(),
            rubric_id: rubric.id.clone(),
            items: map,
            scale: (c.scale.min, c.scale.max),
        }
    }

    /// Replaces (or adds) one scorecard's ratings (competency, score, thin
    /// evidence) in the model; returns the subject and the raters whose
    /// parameters it touches.
    pub(super) fn put_scorecard(
        &mut self,
        card: &CardKeys<'_>,
        ratings: &[(String, i64, bool)],
    ) -> Option<(u32, Vec<u32>)> {
        let CardKeys { scorecard_id, job_id, candidate_id, interviewer, recommendation, submitted_at } = *card;
        let job = self.jobs.get(job_id)?;
        let (min, max) = job.scale;
        let span = f64::from((max - min).max(1));
        let subject = self.subjects.get_or_insert(&(job.key.clone(), Arc::from(candidate_id)));
        let rater = self.raters.get_or_insert(&interviewer.to_string());
        let sc = self.scorecards.get_or_insert(scorecard_id);
        let years = submitted_at as f64 / (365.25 * 24.0 * 3600.0 * 1e6);
        let obs: Vec<Obs> = ratings
            .iter()
            .filter_map(|(key, score, _)| {
                let item = *job.items.get(key)?;
                Some(Obs::new(rater, item, sc, (*score as f64 - f64::from(min)) / span, years))
            })
            .collect();
        // Rubric scales are integer points: every competency is ordinal.
        let steps = (max - min).max(1) as u32;
        let item_groups: Vec<u32> =
            obs.iter().map(|o| job.item_groups.get(&o.item).copied().unwrap_or(NO_GROUP)).collect();
        let model = self.model_mut();
        for (o, &group) in obs.iter().zip(&item_groups) {
            model.set_item_steps(o.item, steps);
            model.set_item_group(o.item, group);
        }
        let mut touched = model.remove_scorecard(subject, sc);
        model.add(subject, &obs);
        if let Some(journal) = &mut self.refit_journal {
            journal.push(ModelChange { subject, scorecard: sc, rater, steps, obs: obs.clone(), item_groups });
        }
        self.groups.link(subject, rater);
        touched.push(rater);
        touched.sort_unstable();
        touched.dedup();
        let facts = ScorecardFacts {
            rater,
            subject,
            recommendation: recommendation.clamp(1, 4) as u8,
            thin_evidence: ratings.iter().filter(|r| r.2).count() as u32,
            ratings: obs.len() as u32,
            scale_span: span,
        };
        if self.facts.len() <= sc as usize {
            self.facts.resize(sc as usize + 1, None);
        }
        self.facts[sc as usize] = Some(facts);
        if self.submitted_at.len() <= sc as usize {
            self.submitted_at.resize(sc as usize + 1, Micros::MAX);
        }
        self.submitted_at[sc as usize] = submitted_at;
        Some((subject, touched))
    }

    /// The revision of a scorecard reflected through this replica's own changes.
    pub(super) fn applied_revision(&self, id: &str) -> i64 {
        self.scorecards.get(id).and_then(|n| self.applied_revisions.get(n as usize)).copied().unwrap_or(0)
    }

    pub(super) fn note_applied(&mut self, id: &str, revision: i64) {
        let n = self.scorecards.get_or_insert(id) as usize;
        if self.applied_revisions.len() <= n {
            self.applied_revisions.resize(n + 1, 0);
        }
        self.applied_revisions[n] = self.applied_revisions[n].max(revision);
    }

    /// Every (job, candidate) with a scorecard: when its first scorecard was
    /// submitted, how many it has and how many recommend YES or STRONG_YES.
    pub(super) fn subject_summaries(&self) -> Vec<SubjectSummary> {
        let mut by_subject: Vec<Option<(Micros, u32, u32)>> = vec![None; self.subjects.ids.len()];
        for (sc, facts) in self.facts.iter().enumerate() {
            let Some(f) = facts else { continue };
            let at = self.submitted_at.get(sc).copied().unwrap_or(Micros::MAX);
            let entry = by_subject[f.subject as usize].get_or_insert((Micros::MAX, 0, 0));
            entry.0 = entry.0.min(at);
            entry.1 += 1;
            entry.2 += u32::from(f.recommendation >= 3);
        }
        by_subject
            .into_iter()
            .zip(&self.subjects.ids)
            .filter_map(|(summary, (job, candidate))| {
                let (first_submitted_at, scorecards, recommending) = summary?;
                Some(SubjectSummary {
                    job: job.clone(),
                    candidate: candidate.clone(),
                    first_submitted_at,
                    scorecards,
                    recommending,
                })
            })
            .collect()
    }

    pub(super) fn facts(&self) -> Vec<ScorecardFacts> {
        self.facts.iter().flatten().copied().collect()
    }

    /// Ratings on a typical scorecard of the job (the median; at least 1).
    pub(super) fn typical_focus(&self, subjects: impl Iterator<Item = u32>) -> usize {
        let mut sizes: Vec<usize> = Vec::new();
        for s in subjects {
            let mut cards: Vec<u32> = self.model.ratings(s).iter().map(|o| o.scorecard).collect();
            cards.sort_unstable();
            let mut i = 0;
            while i < cards.len() {
                let j = cards[i..].partition_point(|c| *c == cards[i]) + i;
                sizes.push(j - i);
                i = j;
            }
        }
        sizes.sort_unstable();
        sizes.get(sizes.len() / 2).copied().unwrap_or(1).max(1)
    }

    /// Subjects of a job with at least one rating.
    pub(super) fn job_subjects(&self, job_id: &str) -> Vec<u32> {
        self.subjects
            .ids
            .iter()
            .enumerate()
            .filter(|(s, (j, _))| &**j == job_id && !self.model.ratings(*s as u32).is_empty())
            .map(|(s, _)| s as u32)
            .collect()
    }

    /// Every job's subjects with at least one rating, in one pass over the
    /// organisation's subjects (ranking many jobs costs one pass, not one each).
    pub(super) fn subjects_by_job(&self) -> HashMap<&str, Vec<u32>> {
        let mut by_job: HashMap<&str, Vec<u32>> = HashMap::new();
        for (s, (job, _)) in self.subjects.ids.iter().enumerate() {
            if !self.model.ratings(s as u32).is_empty() {
                by_job.entry(&**job).or_default().push(s as u32);
            }
        }
        by_job
    }

    /// What ranking each of `jobs` afresh needs (its shape and subjects), from
    /// one pass over the subjects.
    pub(super) fn ranking_inputs(
        &self,
        jobs: impl IntoIterator<Item = String>,
    ) -> Vec<(String, RubricShape, Vec<u32>)> {
        let mut by_job = self.subjects_by_job();
        jobs.into_iter()
            .filter_map(|job| {
                let info = self.jobs.get(&job)?;
                let subjects = by_job.remove(job.as_str()).unwrap_or_default();
                Some((job, info.shape.clone(), subjects))
            })
            .collect()
    }

    /// Records which subjects an update rescored (`None`: all of them).
    pub(super) fn mark_changed(&mut self, touched: Option<Vec<u32>>) {
        match touched {
            None => self.rankings.values_mut().for_each(|c| c.stale = true),
            Some(subjects) => {
                for s in subjects {
                    if let Some((job, _)) = self.subjects.ids.get(s as usize)
                        && let Some(cache) = self.rankings.get_mut(&**job)
                    {
                        cache.pending.insert(s);
                    }
                }
            }
        }
    }

    /// The job's ranking now against the job's hiring bar (the store's, read
    /// by the caller: a bar changed through any replica counts at once),
    /// rescoring only what changed since the last read.
    pub(super) fn ranking(&mut self, job_id: &str, bar: Option<f64>) -> Arc<Ranking> {
        let Some(job) = self.jobs.get(job_id) else {
            return Arc::new(Ranking { entries: Vec::new(), calibrated_at: self.calibrated_at, hiring_bar: None });
        };
        let subjects =
            if self.rankings.get(job_id).is_none_or(|c| c.stale) { Some(self.job_subjects(job_id)) } else { None };
        let cache = self.rankings.entry(job_id.to_string()).or_default();
        if let Some(subjects) = subjects {
            cache.ranking = JobRanking::build(&self.model, &job.shape, subjects);
            cache.stale = false;
            cache.pending.clear();
            cache.snapshot = None;
        } else if !cache.pending.is_empty() {
            cache.ranking.update(&self.model, &job.shape, cache.pending.drain());
            cache.snapshot = None;
        }
        if let Some((version, snapshot)) = &cache.snapshot
            && *version == self.version
            && snapshot.hiring_bar == bar
        {
            return snapshot.clone();
        }
        // Candidates outside the job's largest group of linked candidates cannot
        // be compared with it.
        let groups = &mut self.groups;
        let group_of: Vec<(u32, u32)> =
            cache.ranking.in_order().map(|e| (e.subject, groups.of_subject(e.subject))).collect();
        let mut sizes: HashMap<u32, usize> = HashMap::new();
        for (_, g) in &group_of {
            *sizes.entry(*g).or_default() += 1;
        }
        let main_group = sizes.iter().max_by_key(|(g, n)| (**n, std::cmp::Reverse(**g))).map(|(g, _)| *g);
        let mut entries: Vec<RankedEntry> = cache
            .ranking
            .in_order()
            .zip(&group_of)
            .filter_map(|(e, (_, group))| {
                let overall = e.scores.overall?;
                let distribution = e.scores.overall_distribution?;
                let mut flags = Vec::new();
                if e.scorecards == 1 {
                    flags.push("only one interview".to_string());
                }
                if e.disagreement > DISAGREEMENT {
                    flags.push("panel disagrees".to_string());
                }
                for (key, score) in job.dimension_keys.iter().zip(&e.scores.dimensions) {
                    if score.is_none() {
                        flags.push(format!("{key} not assessed"));
                    }
                }
                if main_group.is_some_and(|g| *group != g) {
                    flags.push("not comparable: no interviewer links this panel to the rest of the job".to_string());
                }
                Some(RankedEntry {
                    candidate_id: self.subjects.ids[e.subject as usize].1.clone(),
                    overall,
                    dimensions: job.dimension_keys.iter().cloned().zip(e.scores.dimensions.iter().copied()).collect(),
                    scorecard_count: e.scorecards,
                    flags,
                    distribution,
                    p_above_bar: bar.map(|b| distribution.p_at_least(b)),
                    tier: 1,
                    group: *group,
                })
            })
            .collect();
        let distributions: Vec<ScoreDistribution> = entries.iter().map(|e| e.distribution).collect();
        for (entry, tier) in entries.iter_mut().zip(decisions::tiers(&distributions)) {
            entry.tier = tier;
        }
        let ranking = Arc::new(Ranking { entries, calibrated_at: self.calibrated_at, hiring_bar: bar });
        cache.snapshot = Some((self.version, ranking.clone()));
        ranking
    }
}

#[cfg(test)]
mod tests {
    use super::ScorecardNumbers;

    #[test]
    fn scorecard_numbers_are_stable_for_uuid_and_other_ids() {
        let mut numbers = ScorecardNumbers::default();
        let uuid = "019bd2f0a1b27c3d8e4f5a6b7c8d9e0f";
        assert_eq!(numbers.get_or_insert(uuid), 0);
        assert_eq!(numbers.get_or_insert("sc-1"), 1);
        // Upper case is not the service's form: kept as a string, its own id.
        assert_eq!(numbers.get_or_insert(&uuid.to_uppercase()), 2);
        assert_eq!(numbers.get_or_insert(uuid), 0);
        assert_eq!(numbers.get("sc-1"), Some(1));
        assert_eq!(numbers.get("019bd2f0a1b27c3d8e4f5a6b7c8d9e00"), None);
        assert_eq!(numbers.uuids.len(), 1);
        assert_eq!(numbers.others.len(), 2);
    }
}

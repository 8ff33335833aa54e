//! Keeps each organisation's calibration in memory: loaded from the database
//! (at start-up, or on first use), updated incrementally on every submission or
//! amendment before the call is acknowledged (read your writes), and refitted
//! in full in the background shortly after changes settle. Rankings and rater
//! reports are computed once per state version and served from cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::calibration::model::{Model, Obs};
use crate::calibration::raters::{self, FlagKind, RaterReport, ScorecardFacts, Thresholds, evidence_is_thin};
use crate::calibration::reliability::{self, Metric};
use crate::calibration::scores::{DimensionShape, Groups, JobRanking, RubricShape, Score, subject_scores};
use crate::domain::{Micros, Rubric, Scorecard, now_micros};
use crate::error::Error;
use crate::store::{CalibrationRow, NewEvent, Page, Store};

/// Sweeps and tolerance of a full fit: no severity or item mean moves by more
/// than this share of the scale (0.0004 points on a 1..5 scale).
const FIT_SWEEPS: usize = 200;
pub const FIT_TOLERANCE: f64 = 1e-4;
/// Quiet time after the last change before the background refit.
const REFIT_DELAY: Duration = Duration::from_millis(500);
/// Spread (0..1 units) of a candidate's per-scorecard averages, after rater
/// severity, above which the ranking says the panel disagrees.
const DISAGREEMENT: f64 = 0.15;

/// Dense indices for ids.
#[derive(Debug, Default, Clone)]
struct Index<K: std::hash::Hash + Eq + Clone> {
    ids: Vec<K>,
    by_id: HashMap<K, u32>,
}

impl<K: std::hash::Hash + Eq + Clone> Index<K> {
    fn get_or_insert(&mut self, key: &K) -> u32 {
        if let Some(&i) = self.by_id.get(key) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(key.clone());
        self.by_id.insert(key.clone(), i);
        i
    }
    fn get(&self, key: &K) -> Option<u32> {
        self.by_id.get(key).copied()
    }
}

/// A scorecard while its rows are read at a load: its first row, and each
/// rating's (competency, score, thin evidence) so far.
type ScorecardBeingRead = (CalibrationRow, Vec<(String, i64, bool)>);

/// The model's numbers for scorecard ids, given on first sight and never looked
/// up backwards. Ids are the service's own 32-hex-digit UUIDs, kept as 16 bytes
/// in the table itself: 200,000 ids as strings were 200,000 small allocations,
/// copied at every refit and left behind as holes in the heap. Any other id (an
/// older database, a test) is kept as a string.
#[derive(Debug, Default)]
struct ScorecardNumbers {
    uuids: HashMap<[u8; 16], u32>,
    others: HashMap<Box<str>, u32>,
}

impl ScorecardNumbers {
    fn uuid(id: &str) -> Option<[u8; 16]> {
        let digits = id.as_bytes();
        if digits.len() != 32 || !digits.iter().all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u128::from_str_radix(id, 16).ok().map(u128::to_be_bytes)
    }

    fn get(&self, id: &str) -> Option<u32> {
        match Self::uuid(id) {
            Some(key) => self.uuids.get(&key).copied(),
            None => self.others.get(id).copied(),
        }
    }

    fn get_or_insert(&mut self, id: &str) -> u32 {
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
struct JobInfo {
    /// The job's id, shared by the keys of all its subjects.
    key: Arc<str>,
    shape: RubricShape,
    /// Shared by every entry of the job's ranking snapshots.
    dimension_keys: Vec<Arc<str>>,
    rubric_id: String,
    /// competency key → model item
    items: HashMap<String, u32>,
    scale: (i32, i32),
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
}

/// A job's ranking at one state version.
#[derive(Debug, Clone)]
pub struct Ranking {
    pub entries: Vec<RankedEntry>,
    pub calibrated_at: Micros,
}

/// One competency's calibrated score for one candidate.
#[derive(Debug, Clone)]
pub struct CompetencyAssessment {
    pub key: String,
    pub score: Score,
}

/// Reliability of one set of ratings (scale points).
#[derive(Debug, Clone, Default)]
pub struct ReliabilityFigures {
    pub competency: String,
    pub icc2_1: Option<f64>,
    pub icc2_k: Option<f64>,
    pub alpha_ordinal: Option<f64>,
    pub alpha_interval: Option<f64>,
    pub rater_count: u32,
    pub subject_count: u32,
}

/// A job's ranking as maintained between requests.
#[derive(Debug, Default)]
struct JobCache {
    ranking: JobRanking,
    /// Subjects rescored by updates since the ranking was last brought up to date.
    pending: std::collections::HashSet<u32>,
    /// Everything changed (a full fit): rebuild before use.
    stale: bool,
    snapshot: Option<(u64, Arc<Ranking>)>,
}

/// Everything calibrated about one organisation.
struct OrgState {
    model: Model,
    raters: Index<String>,
    /// (job, candidate) per subject; the job's id is one shared string.
    subjects: Index<(Arc<str>, Arc<str>)>,
    items: Index<(String, String)>,
    /// Scorecard id → the model's number for it.
    scorecards: ScorecardNumbers,
    facts: Vec<Option<ScorecardFacts>>,
    jobs: HashMap<String, JobInfo>,
    version: u64,
    calibrated_at: Micros,
    /// Groups of candidates linked by shared interviewers.
    groups: Groups,
    /// Per job: the incrementally maintained ranking and its last snapshot.
    rankings: HashMap<String, JobCache>,
    reports: Option<(u64, Arc<RaterReports>)>,
    /// Every scorecard change up to this event sequence is reflected here
    /// (changes through other replicas are caught up from the event log).
    synced_sequence: i64,
    /// Per scorecard number: the revision reflected here by a change through
    /// this replica (0: as loaded), so catching up skips its own changes.
    applied_revisions: Vec<i64>,
}

impl OrgState {
    fn new() -> Self {
        OrgState {
            model: Model::new(),
            raters: Index::default(),
            subjects: Index::default(),
            items: Index::default(),
            scorecards: ScorecardNumbers::default(),
            facts: Vec::new(),
            jobs: HashMap::new(),
            version: 0,
            calibrated_at: now_micros(),
            groups: Groups::default(),
            rankings: HashMap::new(),
            reports: None,
            synced_sequence: 0,
            applied_revisions: Vec::new(),
        }
    }

    fn job_info(job_id: &str, rubric: &Rubric, items: &mut Index<(String, String)>) -> JobInfo {
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
        JobInfo {
            key: Arc::from(job_id),
            shape: RubricShape { scale_min: f64::from(c.scale.min), scale_max: f64::from(c.scale.max), dimensions },
            dimension_keys: c.dimensions.iter().map(|d| Arc::from(d.key.as_str())).collect(),
            rubric_id: rubric.id.clone(),
            items: map,
            scale: (c.scale.min, c.scale.max),
        }
    }

    /// Replaces (or adds) one scorecard's ratings in the model; returns the
    /// subject and the raters whose parameters it touches.
    #[allow(clippy::too_many_arguments)]
    fn put_scorecard(
        &mut self,
        scorecard_id: &str,
        job_id: &str,
        candidate_id: &str,
        interviewer: &str,
        recommendation: i64,
        submitted_at: Micros,
        ratings: &[(String, i64, bool)],
    ) -> Option<(u32, Vec<u32>)> {
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
        let mut touched = self.model.remove_scorecard(subject, sc);
        self.model.add(subject, &obs);
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
        Some((subject, touched))
    }

    /// The revision of a scorecard reflected through this replica's own changes.
    fn applied_revision(&self, id: &str) -> i64 {
        self.scorecards.get(id).and_then(|n| self.applied_revisions.get(n as usize)).copied().unwrap_or(0)
    }

    fn note_applied(&mut self, id: &str, revision: i64) {
        let n = self.scorecards.get_or_insert(id) as usize;
        if self.applied_revisions.len() <= n {
            self.applied_revisions.resize(n + 1, 0);
        }
        self.applied_revisions[n] = self.applied_revisions[n].max(revision);
    }

    fn facts(&self) -> Vec<ScorecardFacts> {
        self.facts.iter().flatten().copied().collect()
    }

    /// Subjects of a job with at least one rating.
    fn job_subjects(&self, job_id: &str) -> Vec<u32> {
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
    fn subjects_by_job(&self) -> HashMap<&str, Vec<u32>> {
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
    fn ranking_inputs(&self, jobs: impl IntoIterator<Item = String>) -> Vec<(String, RubricShape, Vec<u32>)> {
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
    fn mark_changed(&mut self, touched: Option<Vec<u32>>) {
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

    /// The job's ranking now: rescoring only what changed since the last read.
    fn ranking(&mut self, job_id: &str) -> Arc<Ranking> {
        let Some(job) = self.jobs.get(job_id) else {
            return Arc::new(Ranking { entries: Vec::new(), calibrated_at: self.calibrated_at });
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
        let entries = cache
            .ranking
            .in_order()
            .zip(&group_of)
            .filter_map(|(e, (_, group))| {
                let overall = e.scores.overall?;
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
                })
            })
            .collect();
        let ranking = Arc::new(Ranking { entries, calibrated_at: self.calibrated_at });
        cache.snapshot = Some((self.version, ranking.clone()));
        ranking
    }
}

/// The calibration service's state for every organisation.
pub struct Calibrator {
    store: Store,
    thresholds: Thresholds,
    orgs: Mutex<HashMap<String, Arc<Mutex<OrgState>>>>,
    /// (org, job) after every change, for `WatchRanking`.
    changes: broadcast::Sender<(String, String)>,
    refits: Mutex<HashMap<String, u64>>,
    /// Per organisation: wakes its publisher of `ranking.changed` and
    /// `rater.flagged` events.
    publishers: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Per organisation: one catch-up from the event log at a time.
    catch_ups: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per organisation: jobs whose scorecards changed since the last publication.
    dirty_jobs: Mutex<HashMap<String, std::collections::HashSet<String>>>,
    /// Per organisation: the shared check of the database's latest event.
    sequence_checks: Mutex<HashMap<String, Arc<SequenceCheck>>>,
}

/// Concurrent reads of one organisation share their look at the database's
/// latest event sequence. A query that started after a reader arrived has
/// seen every write acknowledged before that reader arrived, so its answer
/// serves that reader as well as the one that asked: read your writes across
/// replicas, with at most one query in flight per organisation instead of one
/// per read. Queries run one at a time behind the gate, on purpose (it is a
/// single-flight gate, not a lock on data); a reader waits for at most the
/// query in flight and one more.
#[derive(Default)]
struct SequenceCheck {
    /// Queries started so far.
    started: std::sync::atomic::AtomicU64,
    /// The number and answer of the last query that finished.
    last: tokio::sync::Mutex<(u64, i64)>,
}

/// Most scorecard changes made through other replicas applied one by one when
/// catching up; further behind, the organisation is loaded afresh.
const CATCH_UP_LIMIT: usize = 1_000;
/// Events read per query when catching up (most are this replica's own).
const CATCH_UP_PAGE: usize = 1_000;

/// Least time between two publications of one organisation's derived events:
/// a burst of submissions yields one `ranking.changed` per job, not hundreds.
const PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// A flag's name as the API spells it, without the enum prefix: `SEVERE`.
fn flag_name(kind: FlagKind) -> &'static str {
    let name = crate::api::flag_kind(kind).as_str_name();
    name.strip_prefix("KIND_").unwrap_or(name)
}

/// What a recruiter sees of a ranking, to tell whether it changed: order,
/// candidates and scores to two decimals.
fn ranking_fingerprint(ranking: &Ranking) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for e in &ranking.entries {
        let o = &e.overall;
        hasher.update(format!(
            "{}|{:.2}|{:.2}|{:.2}|{}\n",
            e.candidate_id,
            o.mean,
            o.lower,
            o.upper,
            e.flags.join(",")
        ));
    }
    hex::encode(&hasher.finalize()[..16])
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (every update is a
    // whole step); keep serving.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Calibrator {
    pub fn new(store: Store, thresholds: Thresholds) -> Arc<Self> {
        let (changes, _) = broadcast::channel(1024);
        Arc::new(Calibrator {
            store,
            thresholds,
            orgs: Mutex::new(HashMap::new()),
            changes,
            refits: Mutex::new(HashMap::new()),
            publishers: Mutex::new(HashMap::new()),
            catch_ups: Mutex::new(HashMap::new()),
            dirty_jobs: Mutex::new(HashMap::new()),
            sequence_checks: Mutex::new(HashMap::new()),
        })
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Loads and fits every organisation with scorecards (at start-up).
    /// Derived events (flags raised or cleared while no replica ran) are
    /// published after each organisation loads.
    pub async fn warm_up(self: &Arc<Self>) -> Result<(), Error> {
        for org in self.store.organisations_with_scorecards().await? {
            self.org(&org).await?;
            self.request_publish(&org);
        }
        Ok(())
    }

    async fn load(&self, org: &str) -> Result<OrgState, Error> {
        let mut state = OrgState::new();
        // Read before the data: a change after this point may be read twice
        // (applying a scorecard again is harmless), never missed.
        state.synced_sequence = self.store.latest_sequence(org).await?;
        let mut after = String::new();
        loop {
            let (jobs, more) = self.store.list_jobs(org, Page::new(&after, 1000)).await?;
            for job in &jobs {
                let rubric = self.store.get_rubric(org, &job.rubric_id, job.rubric_revision).await?;
                if let Some(rubric) = rubric {
                    let info = OrgState::job_info(&job.id, &rubric, &mut state.items);
                    state.jobs.insert(job.id.clone(), info);
                }
            }
            match (more, jobs.last()) {
                (true, Some(last)) => after = last.id.clone(),
                _ => break,
            }
        }
        // Each scorecard goes into the model once its last rating has been read;
        // evidence is reduced to whether it is thin as it arrives.
        let mut current: Option<ScorecardBeingRead> = None;
        let put = |state: &mut OrgState, (first, ratings): ScorecardBeingRead| {
            state.put_scorecard(
                &first.scorecard_id,
                &first.job_id,
                &first.candidate_id,
                &first.interviewer,
                first.recommendation,
                first.submitted_at,
                &ratings,
            );
        };
        self.store
            .each_calibration_rating(org, |mut row| {
                let rating = (std::mem::take(&mut row.competency), row.score, evidence_is_thin(&row.evidence));
                row.evidence = String::new();
                match &mut current {
                    Some((first, ratings)) if first.scorecard_id == row.scorecard_id => ratings.push(rating),
                    _ => {
                        if let Some(done) = current.replace((row, vec![rating])) {
                            put(&mut state, done);
                        }
                    }
                }
            })
            .await?;
        if let Some(done) = current.take() {
            put(&mut state, done);
        }
        let state = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            state.model.fit(FIT_SWEEPS, FIT_TOLERANCE);
            crate::metrics::global().record_full_fit(state.model.total_ratings(), started.elapsed());
            state.groups = Groups::from_model(&state.model);
            state.calibrated_at = now_micros();
            // Rank every job now, so that no first read after a start-up or a
            // reload pays for building a ranking (36 ms at 10,000 candidates).
            let jobs: Vec<String> = state.jobs.keys().cloned().collect();
            for (job, shape, subjects) in state.ranking_inputs(jobs) {
                let ranking = JobRanking::build(&state.model, &shape, subjects);
                state.rankings.insert(job.clone(), JobCache { ranking, ..JobCache::default() });
                state.ranking(&job); // and its snapshot
            }
            state
        })
        .await
        .map_err(|e| Error::Internal(format!("calibration fit: {e}")))?;
        tracing::info!(org, ratings = state.model.total_ratings(), "calibration loaded");
        // What the load read and grew through is free now.
        let _ = tokio::task::spawn_blocking(crate::memory::release_free_memory).await;
        Ok(state)
    }

    /// The organisation's state for a read: on PostgreSQL, where several
    /// replicas may write, first brought up to the database's latest event, so
    /// that a ranking read through this replica reflects a submission
    /// acknowledged by another (read your writes across replicas). One cheap
    /// query when nothing changed elsewhere.
    async fn fresh(self: &Arc<Self>, org: &str) -> Result<Arc<Mutex<OrgState>>, Error> {
        let state = self.org(org).await?;
        if self.store.kind() != "postgres" {
            return Ok(state); // one process owns an SQLite file
        }
        let latest = self.latest_sequence(org).await?;
        if latest <= lock(&state).synced_sequence {
            return Ok(state);
        }
        let gate = lock(&self.catch_ups).entry(org.to_string()).or_default().clone();
        let _one_at_a_time = gate.lock().await;
        let state = self.org(org).await?;
        let synced = lock(&state).synced_sequence;
        if latest <= synced {
            return Ok(state); // another read caught up meanwhile
        }
        const CHANGES: [&str; 3] = ["scorecard.submitted", "scorecard.amended", "candidate.erased"];
        let types: Vec<String> = CHANGES.iter().map(|t| t.to_string()).collect();
        // Page through the changes since the last sync. Most are usually this
        // replica's own, already applied (their revision says so), and cost one
        // row each; only changes made through other replicas are read and
        // applied. Reloading whenever many events had passed reloaded the whole
        // organisation after every burst of this replica's own submissions.
        let mut after = synced;
        // Each scorecard once, at its latest revision, in a deterministic order.
        let mut foreign = std::collections::BTreeSet::new();
        let mut reload = false;
        'pages: loop {
            let page = self.store.list_events(org, after, &types, CATCH_UP_PAGE).await?;
            let more = page.len() > CATCH_UP_PAGE;
            {
                let s = lock(&state);
                for event in page.iter().take(CATCH_UP_PAGE) {
                    if event.sequence > latest {
                        break 'pages;
                    }
                    after = event.sequence;
                    if event.kind == "candidate.erased" {
                        reload = true; // evidence erased: load afresh
                        break 'pages;
                    }
                    let Some(id) = event.resource.strip_prefix("scorecards/") else { continue };
                    let revision = serde_json::from_str::<serde_json::Value>(&event.payload)
                        .ok()
                        .and_then(|p| p["revision"].as_i64())
                        .unwrap_or(i64::MAX);
                    if s.applied_revision(id) < revision && !foreign.contains(id) {
                        foreign.insert(id.to_string());
                    }
                }
            }
            if foreign.len() > CATCH_UP_LIMIT {
                reload = true; // far behind the other replicas
                break;
            }
            if !more {
                break;
            }
        }
        if reload {
            let reloaded = Arc::new(Mutex::new(self.load(org).await?));
            lock(&self.orgs).insert(org.to_string(), reloaded.clone());
            return Ok(reloaded);
        }
        for id in &foreign {
            let Some(scorecard) = self.store.get_scorecard(org, id, 0).await? else { continue };
            let Some(job) = self.store.get_job(org, &scorecard.job_id).await? else { continue };
            let Some(rubric) = self.store.get_rubric(org, &job.rubric_id, job.rubric_revision).await? else { continue };
            self.scorecard_changed(org, &scorecard, &rubric).await?;
        }
        let mut s = lock(&state);
        s.synced_sequence = s.synced_sequence.max(latest);
        drop(s);
        Ok(state)
    }

    /// The database's latest event sequence of `org`, as of some moment after
    /// this call began (see [`SequenceCheck`]).
    async fn latest_sequence(&self, org: &str) -> Result<i64, Error> {
        use std::sync::atomic::Ordering::SeqCst;
        let check = lock(&self.sequence_checks).entry(org.to_string()).or_default().clone();
        let arrived = check.started.load(SeqCst);
        let mut last = check.last.lock().await;
        if last.0 > arrived {
            return Ok(last.1); // started after this reader arrived
        }
        let number = check.started.fetch_add(1, SeqCst) + 1;
        let latest = self.store.latest_sequence(org).await?;
        *last = (number, latest);
        Ok(latest)
    }

    /// The organisation's state, loading it on first use.
    async fn org(&self, org: &str) -> Result<Arc<Mutex<OrgState>>, Error> {
        if let Some(state) = lock(&self.orgs).get(org) {
            return Ok(state.clone());
        }
        let loaded = Arc::new(Mutex::new(self.load(org).await?));
        Ok(lock(&self.orgs).entry(org.to_string()).or_insert(loaded).clone())
    }

    /// [`Calibrator::scorecard_changed`] on a task of its own: once a write has
    /// committed, its calibration update completes even if the request is
    /// cancelled (deadline, client gone) while waiting for it.
    pub async fn committed(self: &Arc<Self>, org: &str, scorecard: &Scorecard, rubric: &Rubric) -> Result<(), Error> {
        let (this, org, scorecard, rubric) = (self.clone(), org.to_string(), scorecard.clone(), rubric.clone());
        tokio::spawn(async move { this.scorecard_changed(&org, &scorecard, &rubric).await })
            .await
            .map_err(|e| Error::Internal(format!("calibration update: {e}")))?
    }

    /// Reflects a submitted or amended scorecard, before it is acknowledged.
    pub async fn scorecard_changed(
        self: &Arc<Self>,
        org: &str,
        scorecard: &Scorecard,
        rubric: &Rubric,
    ) -> Result<(), Error> {
        let state = self.org(org).await?;
        {
            let mut s = lock(&state);
            if !s.jobs.contains_key(&scorecard.job_id) {
                let info = OrgState::job_info(&scorecard.job_id, rubric, &mut s.items);
                s.jobs.insert(scorecard.job_id.clone(), info);
            }
            s.note_applied(&scorecard.id, scorecard.revision);
            let ratings: Vec<(String, i64, bool)> = scorecard
                .content
                .ratings
                .iter()
                .map(|r| (r.competency.clone(), i64::from(r.score), evidence_is_thin(&r.evidence)))
                .collect();
            if let Some((subject, raters)) = s.put_scorecard(
                &scorecard.id,
                &scorecard.job_id,
                &scorecard.candidate_id,
                &scorecard.interviewer,
                scorecard.content.recommendation.code(),
                scorecard.submitted_at,
                &ratings,
            ) {
                let started = std::time::Instant::now();
                let touched = s.model.update_locally(subject, &raters);
                crate::metrics::global().record_incremental_update(started.elapsed());
                s.mark_changed(touched);
                s.version += 1;
                s.calibrated_at = now_micros();
            }
        }
        let _ = self.changes.send((org.to_string(), scorecard.job_id.clone()));
        lock(&self.dirty_jobs).entry(org.to_string()).or_default().insert(scorecard.job_id.clone());
        self.schedule_refit(org);
        Ok(())
    }

    /// Reloads an organisation from the database after a bulk change (import)
    /// and swaps it in; reads meanwhile use the previous state.
    pub async fn reload(self: &Arc<Self>, org: &str, jobs: &[String]) -> Result<(), Error> {
        let state = Arc::new(Mutex::new(self.load(org).await?));
        lock(&self.orgs).insert(org.to_string(), state);
        lock(&self.dirty_jobs).entry(org.to_string()).or_default().extend(jobs.iter().cloned());
        for job in jobs {
            let _ = self.changes.send((org.to_string(), job.clone()));
        }
        self.request_publish(org);
        Ok(())
    }

    /// Wakes the organisation's publisher, starting it on first use.
    fn request_publish(self: &Arc<Self>, org: &str) {
        let notify = {
            let mut publishers = lock(&self.publishers);
            match publishers.get(org) {
                Some(n) => n.clone(),
                None => {
                    let notify = Arc::new(tokio::sync::Notify::new());
                    publishers.insert(org.to_string(), notify.clone());
                    let (this, org, wake) = (self.clone(), org.to_string(), notify.clone());
                    tokio::spawn(async move {
                        loop {
                            wake.notified().await;
                            if let Err(e) = this.publish(&org).await {
                                tracing::warn!(org, error = %e, "publishing ranking and rater events failed");
                            }
                            tokio::time::sleep(PUBLISH_INTERVAL).await;
                        }
                    });
                    notify
                }
            }
        };
        notify.notify_one();
    }

    /// Raises `ranking.changed` for each changed job whose ranking a recruiter
    /// would see differently, and `rater.flagged` for each rater whose flags
    /// were raised or cleared, against what was last published (kept in the
    /// database, so replicas and restarts do not repeat events).
    async fn publish(self: &Arc<Self>, org: &str) -> Result<(), Error> {
        let jobs: Vec<String> = lock(&self.dirty_jobs).remove(org).unwrap_or_default().into_iter().collect();
        let published = self.store.published_states(org).await?;
        let now = now_micros();
        for job in jobs {
            let ranking = self.ranking(org, &job).await?;
            let key = format!("ranking:{job}");
            let value = ranking_fingerprint(&ranking);
            let prior = published.get(&key).map(String::as_str);
            if prior == Some(value.as_str()) {
                continue;
            }
            let event = NewEvent::new(
                "ranking.changed",
                format!("jobs/{job}"),
                serde_json::json!({
                    "job": format!("jobs/{job}"),
                    "candidates": ranking.entries.len(),
                    "calibrate_time": crate::api::convert::timestamp(ranking.calibrated_at)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                }),
            );
            self.store.publish_state(org, &key, prior, &value, &event, now).await?;
        }
        let reports = self.rater_reports(org).await?;
        for (rater, report) in reports.iter() {
            let mut flags: Vec<&str> = report
                .flags
                .iter()
                .filter(|f| f.kind != FlagKind::InsufficientData)
                .map(|f| flag_name(f.kind))
                .collect();
            flags.sort_unstable();
            let value = flags.join(",");
            let key = format!("rater:{rater}");
            let prior = published.get(&key).map(String::as_str);
            if prior.unwrap_or("") == value {
                continue;
            }
            let before: Vec<&str> = prior.unwrap_or("").split(',').filter(|f| !f.is_empty()).collect();
            let raised: Vec<&str> = flags.iter().copied().filter(|f| !before.contains(f)).collect();
            let cleared: Vec<&str> = before.iter().copied().filter(|f| !flags.contains(f)).collect();
            let event = NewEvent::new(
                "rater.flagged",
                format!("raters/{rater}"),
                serde_json::json!({ "rater": rater, "flags": flags, "raised": raised, "cleared": cleared }),
            );
            self.store.publish_state(org, &key, prior, &value, &event, now).await?;
        }
        Ok(())
    }

    /// Forgets an organisation's state so it reloads (after an erasure changed
    /// what evidence says).
    pub fn invalidate(&self, org: &str) {
        lock(&self.orgs).remove(org);
    }

    /// A full warm refit shortly after the last change, off the request path, on
    /// a copy; swapped in only if nothing changed meanwhile.
    fn schedule_refit(self: &Arc<Self>, org: &str) {
        let ticket = {
            let mut refits = lock(&self.refits);
            let t = refits.entry(org.to_string()).or_insert(0);
            *t += 1;
            *t
        };
        let this = self.clone();
        let org = org.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(REFIT_DELAY).await;
            if lock(&this.refits).get(&org) != Some(&ticket) {
                return; // a later change will refit
            }
            let Some(state) = lock(&this.orgs).get(&org).cloned() else { return };
            let (mut model, version, to_rank) = {
                let s = lock(&state);
                let to_rank = s.ranking_inputs(s.rankings.keys().cloned().collect::<Vec<_>>());
                (s.model.clone(), s.version, to_rank)
            };
            // Fit, and re-rank the jobs someone reads, before swapping in: reads
            // never pay for the refit.
            let fitted = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                model.fit(FIT_SWEEPS, FIT_TOLERANCE);
                crate::metrics::global().record_full_fit(model.total_ratings(), started.elapsed());
                let groups = Groups::from_model(&model);
                let rankings: Vec<(String, JobRanking)> = to_rank
                    .into_iter()
                    .map(|(job, shape, subjects)| {
                        let ranking = JobRanking::build(&model, &shape, subjects);
                        (job, ranking)
                    })
                    .collect();
                (model, groups, rankings)
            })
            .await;
            let Ok((model, groups, rankings)) = fitted else { return };
            let (jobs, leftover): (Vec<String>, Model) = {
                let mut s = lock(&state);
                if s.version != version {
                    return;
                }
                // Keep the live per-subject lists, copy the fit in: see `adopt_fit`.
                let leftover = s.model.adopt_fit(model);
                s.groups = groups;
                s.rankings.values_mut().for_each(|c| c.stale = true);
                for (job, ranking) in rankings {
                    s.rankings.insert(job, JobCache { ranking, ..JobCache::default() });
                }
                s.version += 1;
                s.calibrated_at = now_micros();
                (s.jobs.keys().cloned().collect(), leftover)
            };
            drop(leftover);
            for job in jobs {
                let _ = this.changes.send((org.clone(), job));
            }
            this.request_publish(&org);
            // The replaced model and rankings are free now.
            let _ = tokio::task::spawn_blocking(crate::memory::release_free_memory).await;
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<(String, String)> {
        self.changes.subscribe()
    }

    pub async fn ranking(self: &Arc<Self>, org: &str, job_id: &str) -> Result<Arc<Ranking>, Error> {
        let state = self.fresh(org).await?;
        let mut s = lock(&state);
        Ok(s.ranking(job_id))
    }

    /// Calibrated per-competency scores of a candidate for a job, by competency key.
    pub async fn assessment(
        self: &Arc<Self>,
        org: &str,
        job_id: &str,
        candidate_id: &str,
    ) -> Result<(Vec<CompetencyAssessment>, Micros), Error> {
        let state = self.fresh(org).await?;
        let s = lock(&state);
        let Some(job) = s.jobs.get(job_id) else { return Ok((Vec::new(), s.calibrated_at)) };
        let Some(subject) = s.subjects.get(&(Arc::from(job_id), Arc::from(candidate_id))) else {
            return Ok((Vec::new(), s.calibrated_at));
        };
        let scores = subject_scores(&s.model, subject, &job.shape);
        let mut out: Vec<CompetencyAssessment> = scores
            .competencies
            .iter()
            .filter_map(|(item, score)| {
                let key = s.items.ids.get(*item as usize).filter(|(r, _)| *r == job.rubric_id)?.1.clone();
                Some(CompetencyAssessment { key, score: *score })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((out, s.calibrated_at))
    }

    /// Rater reports at the current state. Computing them takes time at scale
    /// (every rater against the panel without them: about 0.9 s at 1,000,000
    /// ratings), so it runs on a copy, off the organisation's lock: submissions
    /// are never held up by a report read.
    pub async fn rater_reports(self: &Arc<Self>, org: &str) -> Result<Arc<RaterReports>, Error> {
        let state = self.fresh(org).await?;
        let (version, model, facts, raters) = {
            let s = lock(&state);
            if let Some((version, reports)) = &s.reports
                && *version == s.version
            {
                return Ok(reports.clone());
            }
            (s.version, s.model.clone(), s.facts(), s.raters.ids.clone())
        };
        let thresholds = self.thresholds.clone();
        let reports = tokio::task::spawn_blocking(move || {
            let mut reports: RaterReports = raters::reports(&model, &facts, &thresholds)
                .into_iter()
                .map(|r| (raters[r.rater as usize].clone(), r))
                .collect();
            reports.sort_by(|a, b| a.0.cmp(&b.0));
            // The copy was as large as the model: give it back.
            drop((model, facts));
            crate::memory::release_free_memory();
            reports
        })
        .await
        .map_err(|e| Error::Internal(format!("rater reports: {e}")))?;
        let reports = Arc::new(reports);
        let mut s = lock(&state);
        if s.version == version {
            s.reports = Some((version, reports.clone()));
        }
        Ok(reports)
    }

    /// Reliability per competency and overall of the panels of the given jobs.
    pub async fn reliability(
        self: &Arc<Self>,
        org: &str,
        job_ids: &[String],
    ) -> Result<(Vec<ReliabilityFigures>, ReliabilityFigures), Error> {
        let state = self.fresh(org).await?;
        let s = lock(&state);
        // competency key -> (subject, rater, score on the scale)
        let mut by_key: std::collections::BTreeMap<String, Vec<(u32, u32, f64)>> = Default::default();
        let mut overall: HashMap<(u32, u32), (f64, f64)> = HashMap::new();
        for (subject, (job, _)) in s.subjects.ids.iter().enumerate() {
            if !job_ids.iter().any(|j| **j == **job) {
                continue;
            }
            let Some(info) = s.jobs.get(&**job) else { continue };
            let span = info.shape.scale_max - info.shape.scale_min;
            for o in s.model.ratings(subject as u32) {
                let Some((_, key)) = s.items.ids.get(o.item as usize) else { continue };
                let value = info.shape.scale_min + o.value() * span;
                by_key.entry(key.clone()).or_default().push((subject as u32, o.rater, value));
                let e = overall.entry((subject as u32, o.rater)).or_default();
                e.0 += value;
                e.1 += 1.0;
            }
        }
        let figures = |competency: String, cells: &[(u32, u32, f64)]| {
            let mut units: HashMap<u32, Vec<f64>> = HashMap::new();
            for &(subject, _, v) in cells {
                units.entry(subject).or_default().push(v);
            }
            let mut units: Vec<(u32, Vec<f64>)> = units.into_iter().collect();
            units.sort_by_key(|u| u.0);
            let units: Vec<Vec<f64>> = units.into_iter().map(|u| u.1).collect();
            let mut raters: Vec<u32> = cells.iter().map(|c| c.1).collect();
            raters.sort_unstable();
            raters.dedup();
            let icc = reliability::icc2(cells);
            ReliabilityFigures {
                competency,
                icc2_1: icc.map(|x| x.0),
                icc2_k: icc.map(|x| x.1),
                alpha_ordinal: reliability::krippendorff_alpha(&units, Metric::Ordinal),
                alpha_interval: reliability::krippendorff_alpha(&units, Metric::Interval),
                rater_count: raters.len() as u32,
                subject_count: units.len() as u32,
            }
        };
        let per: Vec<ReliabilityFigures> = by_key.iter().map(|(k, cells)| figures(k.clone(), cells)).collect();
        let mut cells: Vec<(u32, u32, f64)> = overall.into_iter().map(|((s, r), (sum, n))| (s, r, sum / n)).collect();
        cells.sort_by_key(|c| (c.0, c.1));
        Ok((per, figures(String::new(), &cells)))
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

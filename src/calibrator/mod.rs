//! Keeps each organisation's calibration in memory: loaded from the database
//! (at start-up, or on first use), updated incrementally on every submission or
//! amendment before the call is acknowledged (read your writes), and refitted
//! in full in the background shortly after changes settle. Rankings and rater
//! reports are computed once per state version and served from cache.
//!
//! - `state`: one organisation's state: the model, its indexes, rankings
//! - `load`: loading an organisation, catching up with other replicas' writes
//! - `update`: a committed scorecard applied before the call is acknowledged
//! - `refit`: the full fit in the background once changes settle
//! - `decisions`: pairwise comparisons and interview plans
//! - `publish`: `ranking.changed` and `rater.flagged` events
//! - `reliability`: ICC and Krippendorff's alpha per competency
//! - `snapshot`: the state written when the server stops, read back at start

mod decisions;
mod load;
mod publish;
mod refit;
mod reliability;
mod snapshot;
mod state;
mod update;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::calibration::differentials::{self, RaterDifferential};
use crate::calibration::raters::{self, Thresholds};
use crate::calibration::scores::subject_scores;
use crate::domain::Micros;
use crate::error::Error;
use crate::store::Store;

pub use decisions::{Compared, PlanQuestion, PlannedInterviews, Suggestion};
pub use load::ImportStream;
use load::SequenceCheck;
pub use reliability::ReliabilityFigures;
use state::OrgState;
pub use state::{CompetencyAssessment, RankedEntry, Ranking, RaterReports, SubjectSummary};

/// Sweeps and tolerance of a full fit (the model's own, which a small
/// organisation's live refit uses too).
pub use crate::calibration::model::{FIT_SWEEPS, FIT_TOLERANCE};
/// Quiet time after the last change before the background refit.
const REFIT_DELAY: Duration = Duration::from_millis(500);

/// The calibration service's state for every organisation.
pub struct Calibrator {
    store: Store,
    thresholds: Thresholds,
    /// Whether organisations are restored from their snapshots.
    snapshots: bool,
    orgs: Mutex<HashMap<String, Arc<Mutex<OrgState>>>>,
    /// (org, job) after every change, for `WatchRanking`.
    changes: broadcast::Sender<(String, String)>,
    refits: Mutex<HashMap<String, refit::RefitSchedule>>,
    /// Per organisation: wakes its publisher of `ranking.changed` and
    /// `rater.flagged` events.
    publishers: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Per organisation: one catch-up from the event log at a time.
    catch_ups: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per organisation: one load from the database at a time; concurrent
    /// first reads wait for it instead of each loading and fitting.
    loads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per organisation: bumped by every invalidation, so that a load that
    /// may have read before it is not kept.
    epochs: Mutex<HashMap<String, u64>>,
    /// Per organisation: jobs whose scorecards changed since the last publication.
    dirty_jobs: Mutex<HashMap<String, std::collections::HashSet<String>>>,
    /// Per organisation: the shared check of the database's latest event.
    sequence_checks: Mutex<HashMap<String, Arc<SequenceCheck>>>,
    /// Organisations whose scorecards were imported since their state was
    /// loaded: reloaded before their next read, or once imports pause.
    imports: Mutex<HashMap<String, load::PendingImport>>,
    /// Per organisation: one settling of imports at a time.
    settles: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per organisation: the state and version its stored snapshot holds
    /// (written or restored by this process), so an unchanged state is not
    /// written again.
    snapshotted: Mutex<HashMap<String, SnapshotOf>>,
    /// Set once the server has stopped ([`Calibrator::stop`]): no background
    /// work starts after it.
    stopped: std::sync::atomic::AtomicBool,
}

/// The state (and its version) a stored snapshot holds.
type SnapshotOf = (std::sync::Weak<Mutex<OrgState>>, u64);

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (every update is a
    // whole step); keep serving.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Calibrator {
    /// `snapshots`: restore organisations from their calibration snapshots
    /// (see [`Calibrator::write_snapshots`]) instead of always reading every
    /// scorecard.
    pub fn new(store: Store, thresholds: Thresholds, snapshots: bool) -> Arc<Self> {
        let (changes, _) = broadcast::channel(1024);
        Arc::new(Calibrator {
            store,
            thresholds,
            snapshots,
            orgs: Mutex::new(HashMap::new()),
            changes,
            refits: Mutex::new(HashMap::new()),
            publishers: Mutex::new(HashMap::new()),
            catch_ups: Mutex::new(HashMap::new()),
            loads: Mutex::new(HashMap::new()),
            epochs: Mutex::new(HashMap::new()),
            dirty_jobs: Mutex::new(HashMap::new()),
            sequence_checks: Mutex::new(HashMap::new()),
            imports: Mutex::new(HashMap::new()),
            settles: Mutex::new(HashMap::new()),
            snapshotted: Mutex::new(HashMap::new()),
            stopped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The server has stopped taking requests: no background work (a refit,
    /// a publication of derived events, a load after an import, the rest of
    /// the warm-up) starts after this; what is running finishes. Without it a
    /// stopped server's timers went on loading organisations and writing
    /// events into a database that the next server already serves.
    pub fn stop(&self) {
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        // Each publisher waits to be woken: wake it to end, letting go of the state.
        for publisher in lock(&self.publishers).values() {
            publisher.notify_one();
        }
    }

    pub(super) fn stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    pub fn subscribe(&self) -> broadcast::Receiver<(String, String)> {
        self.changes.subscribe()
    }

    /// The job's ranking, against its hiring bar as stored now.
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "ranking"))]
    pub async fn ranking(self: &Arc<Self>, org: &str, job_id: &str) -> Result<Arc<Ranking>, Error> {
        let bar = self.store.read_job(org, job_id).await?.and_then(|j| j.hiring_bar);
        let state = self.fresh(org).await?;
        let mut s = lock(&state);
        Ok(s.ranking(job_id, bar))
    }

    /// A job's own settings changed (its hiring bar): its ranking's watchers
    /// get the new one, and `ranking.changed` is raised if what a recruiter
    /// sees moved. (Other replicas' watchers see it with the next change.)
    pub fn job_changed(self: &Arc<Self>, org: &str, job_id: &str) {
        let _ = self.changes.send((org.to_string(), job_id.to_string()));
        lock(&self.dirty_jobs).entry(org.to_string()).or_default().insert(job_id.to_string());
        self.request_publish(org);
    }

    /// Every (job, candidate) of the organisation with a scorecard, from the
    /// state rankings are served from (no aggregate over the scorecards table).
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "subject_summaries"))]
    pub async fn subject_summaries(self: &Arc<Self>, org: &str) -> Result<Vec<SubjectSummary>, Error> {
        let state = self.fresh(org).await?;
        let s = lock(&state);
        Ok(s.subject_summaries())
    }

    /// Calibrated per-competency scores of a candidate for a job, by competency key.
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "assessment"))]
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
    /// (every rater against the panel without them: about 0.2 s at 1,000,000
    /// ratings, 2 s at 10,000,000), so it runs off the organisation's lock on
    /// the state it started from, shared, not copied (a submission that
    /// arrives meanwhile copies it, see `OrgState::model_mut`): submissions
    /// are never held up by a report read.
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "rater_reports"))]
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
            // What the reports allocated (and, when a submission arrived
            // meanwhile, the state they held) goes back to the system.
            drop(facts);
            drop(model);
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

    /// Differential rater functioning under one grouping: `category_of`
    /// gives a candidate's category (a small number; unknown: `None`). Runs on
    /// a copy of the model, off the organisation's lock, and changes nothing:
    /// the categories never reach the model or any cached figure. Returns
    /// (rater id, differentials) by rater id, and the calibration time.
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "differentials"))]
    pub async fn differentials(
        self: &Arc<Self>,
        org: &str,
        category_of: impl Fn(&str) -> Option<u8> + Send + 'static,
    ) -> Result<(Vec<(String, RaterDifferential)>, Micros), Error> {
        let state = self.fresh(org).await?;
        let (model, facts, raters, candidates, calibrated_at) = {
            let s = lock(&state);
            let candidates: Vec<Arc<str>> = s.subjects.ids.iter().map(|(_, c)| c.clone()).collect();
            (s.model.clone(), s.facts(), s.raters.ids.clone(), candidates, s.calibrated_at)
        };
        let thresholds = self.thresholds.clone();
        let out = tokio::task::spawn_blocking(move || {
            let categories: Vec<Option<u8>> = candidates.iter().map(|c| category_of(c)).collect();
            let mut out: Vec<(String, RaterDifferential)> =
                differentials::differentials(Arc::unwrap_or_clone(model), &facts, &categories, &thresholds)
                    .into_iter()
                    .map(|d| (raters[d.rater as usize].clone(), d))
                    .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            drop(facts);
            crate::memory::release_free_memory();
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("rater differentials: {e}")))?;
        Ok((out, calibrated_at))
    }
}

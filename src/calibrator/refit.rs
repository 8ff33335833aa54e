//! The full fit in the background, once an organisation's changes settle (or,
//! under steady writes, once the oldest unfitted change has waited long
//! enough); it clears the bounded lag that local updates leave.
//!
//! The fit runs on a copy of the model. Changes that arrive meanwhile are
//! journaled and replayed onto the fitted copy (each with its local update)
//! before it replaces the live model, so a refit lands however steadily
//! writes arrive, and nothing acknowledged during it is lost.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::calibration::model::Model;
use crate::calibration::scores::{Groups, JobRanking};
use crate::domain::now_micros;

use super::state::{JobCache, ModelChange};
use super::{Calibrator, FIT_SWEEPS, FIT_TOLERANCE, REFIT_DELAY, lock};

/// Longest the oldest unfitted change waits for a refit to start while
/// changes keep arriving less than [`REFIT_DELAY`] apart.
pub(super) const REFIT_MAX_WAIT: Duration = Duration::from_secs(5);
/// A journal this long or shorter is replayed under the organisation's lock;
/// a longer one is first replayed off it (rounds bounded by `REPLAY_ROUNDS`).
const REPLAY_UNDER_LOCK: usize = 64;
const REPLAY_ROUNDS: usize = 4;

/// One organisation's refit schedule.
#[derive(Debug, Default)]
pub(super) struct RefitSchedule {
    /// Bumped by every change; the task of the latest change runs the refit.
    ticket: u64,
    /// When the oldest change not yet in a refit's copy arrived.
    pending_since: Option<Instant>,
    running: bool,
}

/// Subjects rescored by replayed changes (`None`: all of them).
type Rescored = Option<HashSet<u32>>;

fn replay(changes: &[ModelChange], model: &mut Model, groups: &mut Groups, rescored: &mut Rescored) {
    for change in changes {
        match (change.replay(model, groups), rescored.as_mut()) {
            (Some(subjects), Some(set)) => set.extend(subjects),
            (None, _) => *rescored = None,
            (Some(_), None) => {}
        }
    }
}

/// Ends a running refit of `org` when dropped: clears `running`, and
/// schedules the next refit if changes arrived meanwhile.
struct Release {
    calibrator: Arc<Calibrator>,
    org: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let again = {
            let mut refits = lock(&self.calibrator.refits);
            let schedule = refits.entry(self.org.clone()).or_default();
            schedule.running = false;
            schedule.pending_since.is_some()
        };
        // (Not while the runtime is going away: nothing would run it.)
        if again && tokio::runtime::Handle::try_current().is_ok() {
            self.calibrator.spawn_refit(std::mem::take(&mut self.org), None);
        }
    }
}

impl Calibrator {
    /// Notes a change and schedules a full refit after it.
    pub(super) fn schedule_refit(self: &Arc<Self>, org: &str) {
        let ticket = {
            let mut refits = lock(&self.refits);
            let schedule = refits.entry(org.to_string()).or_default();
            schedule.ticket += 1;
            schedule.pending_since.get_or_insert_with(Instant::now);
            schedule.ticket
        };
        self.spawn_refit(org.to_string(), Some(ticket));
    }

    /// After [`REFIT_DELAY`], refits if `ticket` is still the latest change
    /// (quiet since), or the oldest pending change has waited
    /// [`REFIT_MAX_WAIT`], or `ticket` is `None` (a follow-up to a refit that
    /// changes arrived during) — unless a refit is running already.
    fn spawn_refit(self: &Arc<Self>, org: String, ticket: Option<u64>) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REFIT_DELAY).await;
            if this.stopped() {
                return;
            }
            {
                let mut refits = lock(&this.refits);
                let schedule = refits.entry(org.clone()).or_default();
                let Some(since) = schedule.pending_since else { return };
                let quiet = ticket.is_none_or(|t| t == schedule.ticket);
                if schedule.running || !(quiet || since.elapsed() >= REFIT_MAX_WAIT) {
                    return;
                }
                schedule.running = true;
                schedule.pending_since = None;
            }
            // Whatever happens to the refit (even a panic), the schedule is
            // released, or no refit of this organisation would run again.
            let release = Release { calibrator: this.clone(), org: org.clone() };
            this.refit(&org).await;
            drop(release);
        });
    }

    /// A full warm refit, off the request path, on a copy; changes made during
    /// the fit are replayed onto the copy before it is swapped in.
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "refit"))]
    async fn refit(self: &Arc<Self>, org: &str) {
        let Some(state) = lock(&self.orgs).get(org).cloned() else { return };
        let (model, to_rank) = {
            let mut s = lock(&state);
            let to_rank = s.ranking_inputs(s.rankings.keys().cloned().collect::<Vec<_>>());
            s.refit_journal = Some(Vec::new());
            // A copy of its own to fit, off the lock.
            (Model::clone(&s.model), to_rank)
        };
        // Fit, and re-rank the jobs someone reads, before swapping in: reads
        // never pay for the refit.
        let fitted = tokio::task::spawn_blocking(move || {
            let mut model = model;
            let started = Instant::now();
            model.fit(FIT_SWEEPS, FIT_TOLERANCE);
            crate::metrics::global().record_full_fit(model.total_ratings(), started.elapsed());
            let groups = Groups::from_model(&model);
            let rankings: Vec<(String, JobRanking)> = JobRanking::build_all(&model, to_rank);
            (model, groups, rankings)
        })
        .await;
        let Ok((mut model, mut groups, rankings)) = fitted else {
            lock(&state).refit_journal = None;
            return;
        };
        crate::pauses::point("calibrator.refit.fitted", org).await;
        let mut rescored: Rescored = Some(HashSet::new());
        let mut round = 0;
        let mut replayed = 0;
        let (jobs, leftover) = loop {
            // A long journal is first caught up off the lock (writers keep
            // journaling meanwhile); the last stretch is replayed under it.
            let batch = {
                let mut s = lock(&state);
                if s.retired {
                    return; // a reload replaced the state; it fitted afresh
                }
                let Some(journal) = s.refit_journal.as_mut() else { return };
                if journal.len() > REPLAY_UNDER_LOCK && round < REPLAY_ROUNDS {
                    Some(std::mem::take(journal))
                } else {
                    None
                }
            };
            if let Some(batch) = batch {
                round += 1;
                replayed += batch.len();
                let caught_up = tokio::task::spawn_blocking(move || {
                    replay(&batch, &mut model, &mut groups, &mut rescored);
                    (model, groups, rescored)
                })
                .await;
                let Ok(caught_up) = caught_up else {
                    lock(&state).refit_journal = None;
                    return;
                };
                (model, groups, rescored) = caught_up;
                continue;
            }
            let mut s = lock(&state);
            if s.retired {
                return;
            }
            let Some(batch) = s.refit_journal.take() else { return };
            replayed += batch.len();
            replay(&batch, &mut model, &mut groups, &mut rescored);
            // Keep the live per-subject lists, copy the fit in: see `adopt_fit`.
            let leftover = s.model_mut().adopt_fit(model);
            s.groups = groups;
            s.rankings.values_mut().for_each(|c| c.stale = true);
            for (job, ranking) in rankings {
                s.rankings.insert(job, JobCache { ranking, ..JobCache::default() });
            }
            s.mark_changed(rescored.map(|set| set.into_iter().collect()));
            s.version += 1;
            s.calibrated_at = now_micros();
            break (s.jobs.keys().cloned().collect::<Vec<String>>(), leftover);
        };
        drop(leftover);
        crate::metrics::global().record_refit_landed(replayed);
        crate::pauses::point("calibrator.refit.landed", org).await;
        for job in jobs {
            let _ = self.changes.send((org.to_string(), job));
        }
        self.request_publish(org);
        // The replaced model and rankings are free now.
        let _ = tokio::task::spawn_blocking(crate::memory::release_free_memory).await;
    }
}

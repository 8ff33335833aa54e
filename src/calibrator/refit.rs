//! The full fit in the background, once an organisation's changes settle; it
//! clears the bounded lag that local updates leave.

use std::sync::Arc;

use crate::calibration::model::Model;
use crate::calibration::scores::{Groups, JobRanking};
use crate::domain::now_micros;

use super::state::JobCache;
use super::{Calibrator, FIT_SWEEPS, FIT_TOLERANCE, REFIT_DELAY, lock};

impl Calibrator {
    /// A full warm refit shortly after the last change, off the request path, on
    /// a copy; swapped in only if nothing changed meanwhile.
    pub(super) fn schedule_refit(self: &Arc<Self>, org: &str) {
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
}

//! A committed scorecard (first submission, amendment, erasure) applied to the
//! organisation's state before the call is acknowledged: read your writes.

use std::sync::Arc;

use crate::calibration::raters::evidence_is_thin;
use crate::domain::{Rubric, Scorecard, now_micros};
use crate::error::Error;

use super::state::{CardKeys, Committed, OrgState};
use super::{Calibrator, lock};

impl Calibrator {
    /// [`Calibrator::scorecard_changed`] on a task of its own: once a write has
    /// committed, its calibration update completes even if the request is
    /// cancelled (deadline, client gone) while waiting for it.
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "committed"))]
    pub async fn committed(
        self: &Arc<Self>,
        org: &str,
        scorecard: &Scorecard,
        rubric: &Arc<Rubric>,
    ) -> Result<(), Error> {
        let change = Arc::new(Committed { scorecard: scorecard.clone(), rubric: Arc::clone(rubric) });
        let (this, org) = (self.clone(), org.to_string());
        tokio::spawn(async move { this.scorecard_changed(&org, change).await })
            .await
            .map_err(|e| Error::Internal(format!("calibration update: {e}")))?
    }

    /// Reflects a submitted or amended scorecard, before it is acknowledged.
    pub(super) async fn scorecard_changed(self: &Arc<Self>, org: &str, change: Arc<Committed>) -> Result<(), Error> {
        crate::pauses::point("calibrator.update.before_apply", org).await;
        loop {
            let state = self.org(org).await?;
            let mut s = lock(&state);
            if s.retired {
                continue; // a reload replaced it just now: apply to its successor
            }
            apply(&mut s, &change);
            if let Some(journal) = &mut s.reload_journal {
                journal.push(change.clone());
            }
            break;
        }
        let job = change.scorecard.job_id.clone();
        let _ = self.changes.send((org.to_string(), job.clone()));
        lock(&self.dirty_jobs).entry(org.to_string()).or_default().insert(job);
        self.schedule_refit(org);
        Ok(())
    }
}

/// Applies one committed scorecard to an organisation's state, unless the
/// state already reflects that revision or a newer one. Two amendments of one
/// scorecard commit in order but their updates may arrive out of order; a load
/// records the revision it read; a reload replays what arrived while it ran.
pub(super) fn apply(s: &mut OrgState, change: &Committed) {
    let Committed { scorecard, rubric } = change;
    if scorecard.revision <= s.applied_revision(&scorecard.id) {
        return;
    }
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
    let card = CardKeys {
        scorecard_id: &scorecard.id,
        job_id: &scorecard.job_id,
        candidate_id: &scorecard.candidate_id,
        interviewer: &scorecard.interviewer,
        recommendation: scorecard.content.recommendation.code(),
        submitted_at: scorecard.submitted_at,
    };
    if let Some((subject, raters)) = s.put_scorecard(&card, &ratings) {
        let started = std::time::Instant::now();
        let touched = s.model_mut().update_locally(subject, &raters);
        crate::metrics::global().record_incremental_update(started.elapsed());
        s.mark_changed(touched);
        s.version += 1;
        s.calibrated_at = now_micros();
    }
}

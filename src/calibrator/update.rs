//! A committed scorecard (first submission, amendment, erasure) applied to the
//! organisation's state before the call is acknowledged: read your writes.

use std::sync::Arc;

use crate::calibration::raters::evidence_is_thin;
use crate::domain::{Rubric, Scorecard, now_micros};
use crate::error::Error;

use super::state::{CardKeys, OrgState};
use super::{Calibrator, lock};

impl Calibrator {
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
            // Two amendments of one scorecard commit in order but their
            // updates may arrive here out of order: a revision never replaces
            // a newer one. (A load records no revisions, applied 0: an update
            // that arrives after a load which already read a newer revision is
            // still applied; issue 16's reload work closes that corner.)
            if scorecard.revision < s.applied_revision(&scorecard.id) {
                return Ok(());
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
}

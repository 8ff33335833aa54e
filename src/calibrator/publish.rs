//! Derived events: `ranking.changed` per job and `rater.flagged` per rater,
//! published at most once a second per organisation and only when what a
//! recruiter sees changed.

use std::sync::Arc;

use crate::calibration::raters::FlagKind;
use crate::domain::now_micros;
use crate::error::Error;
use crate::store::NewEvent;

use super::state::Ranking;
use super::{Calibrator, lock};

/// Least time between two publications of one organisation's derived events:
/// a burst of submissions yields one `ranking.changed` per job, not hundreds.
const PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

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

impl Calibrator {
    /// Wakes the organisation's publisher, starting it on first use.
    pub(super) fn request_publish(self: &Arc<Self>, org: &str) {
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
    pub(super) async fn publish(self: &Arc<Self>, org: &str) -> Result<(), Error> {
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
                    "calibrate_time": crate::domain::time::rfc3339(ranking.calibrated_at),
                }),
            );
            self.store.publish_state(org, &key, prior, &value, &event, now).await?;
        }
        let reports = self.rater_reports(org).await?;
        for (rater, report) in reports.iter() {
            let mut flags: Vec<&str> =
                report.flags.iter().filter(|f| f.kind != FlagKind::InsufficientData).map(|f| f.kind.name()).collect();
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
}

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

/// Most tier changes and bar crossings one `ranking.changed` lists (the
/// counts say how many there were).
const LISTED_CHANGES: usize = 100;

/// What a recruiter sees of a ranking, to tell whether it changed: order,
/// candidates, scores and probabilities to two decimals, tiers, the bar.
fn ranking_fingerprint(ranking: &Ranking) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(format!("bar {:?}\n", ranking.hiring_bar));
    for e in &ranking.entries {
        let o = &e.overall;
        hasher.update(format!(
            "{}|{:.2}|{:.2}|{:.2}|{}|{}|{:.2}\n",
            e.candidate_id,
            o.mean,
            o.lower,
            o.upper,
            e.flags.join(","),
            e.tier,
            e.p_above_bar.unwrap_or(-1.0),
        ));
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Each candidate's tier and side of the bar (`a` at or above with p ≥ 0.5,
/// `b` below, `-` without a bar), one line each: kept with the fingerprint
/// so that the next event can say who changed tier or crossed p = 0.5.
fn positions(ranking: &Ranking) -> String {
    let mut out = String::with_capacity(ranking.entries.len() * 40);
    for e in &ranking.entries {
        let side = match e.p_above_bar {
            Some(p) if p >= 0.5 => 'a',
            Some(_) => 'b',
            None => '-',
        };
        out.push_str(&format!("{} {} {side}\n", e.candidate_id, e.tier));
    }
    out
}

/// The positions part of a published value, by candidate.
fn parse_positions(value: &str) -> std::collections::HashMap<&str, (u32, char)> {
    value
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let candidate = parts.next()?;
            let tier = parts.next()?.parse().ok()?;
            let side = parts.next()?.chars().next()?;
            Some((candidate, (tier, side)))
        })
        .collect()
}

/// Who changed tier and who crossed p = 0.5, against the last published
/// positions (none on the first publication).
fn changes(prior: Option<&str>, ranking: &Ranking) -> serde_json::Value {
    let before = prior.map(parse_positions).unwrap_or_default();
    let (mut tiers, mut crossed) = (Vec::new(), Vec::new());
    let (mut tier_total, mut crossed_total) = (0usize, 0usize);
    for e in &ranking.entries {
        let Some(&(tier, side)) = before.get(&*e.candidate_id) else { continue };
        let candidate = format!("candidates/{}", e.candidate_id);
        if tier != e.tier {
            tier_total += 1;
            if tiers.len() < LISTED_CHANGES {
                tiers.push(serde_json::json!({ "candidate": candidate, "from": tier, "to": e.tier }));
            }
        }
        if let Some(p) = e.p_above_bar
            && side != '-'
            && (side == 'a') != (p >= 0.5)
        {
            crossed_total += 1;
            if crossed.len() < LISTED_CHANGES {
                crossed.push(serde_json::json!({ "candidate": candidate, "p_above_bar": p, "above": p >= 0.5 }));
            }
        }
    }
    serde_json::json!({
        "tier_changes": tiers,
        "tier_changes_total": tier_total,
        "bar_crossings": crossed,
        "bar_crossings_total": crossed_total,
    })
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
                            if this.stopped() {
                                return;
                            }
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
            let fingerprint = ranking_fingerprint(&ranking);
            let prior = published.get(&key).map(String::as_str);
            if prior.and_then(|p| p.lines().next()) == Some(fingerprint.as_str()) {
                continue;
            }
            let value = format!("{fingerprint}\n{}", positions(&ranking));
            let mut payload = serde_json::json!({
                "job": format!("jobs/{job}"),
                "candidates": ranking.entries.len(),
                "calibrate_time": crate::domain::time::rfc3339(ranking.calibrated_at),
                "hiring_bar": ranking.hiring_bar,
            });
            if let (Some(p), serde_json::Value::Object(more)) = (payload.as_object_mut(), changes(prior, &ranking)) {
                p.extend(more);
            }
            let event = NewEvent::new("ranking.changed", format!("jobs/{job}"), payload);
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

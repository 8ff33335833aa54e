//! The decision reads: pairwise probabilities between a job's candidates and
//! a plan of next interviews, from the organisation's current state (the
//! numbers themselves: `calibration::decisions`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::calibration::decisions::{self, PlanRequest, ScoreDistribution};
use crate::domain::Micros;
use crate::error::Error;

use super::{Calibrator, lock};

/// A compared candidate: absent from the ranking (no scorecard for the job).
pub struct Compared {
    pub distributions: Vec<Option<(ScoreDistribution, u32)>>,
    pub calibrated_at: Micros,
}

/// What to plan.
pub struct PlanQuestion {
    /// Candidate ids; empty: every candidate of the job's ranking not in `settled`.
    pub candidates: Vec<String>,
    /// Candidates whose latest decision is final (left out by default).
    pub settled: std::collections::HashSet<String>,
    /// Interviewer ids; empty: everyone who has rated in the organisation.
    pub interviewers: Vec<String>,
    pub slots: usize,
    /// 0: twice the even share.
    pub max_per_interviewer: usize,
}

/// One suggested interview, by ids and competency keys.
pub struct Suggestion {
    pub candidate: String,
    pub interviewer: String,
    pub competencies: Vec<String>,
    pub expected_gain: f64,
    pub p_before: f64,
    pub reason: String,
}

/// The plan.
pub struct PlannedInterviews {
    pub suggestions: Vec<Suggestion>,
    pub wrong_before: f64,
    pub wrong_after: f64,
    pub line: f64,
    pub shortlist: bool,
    pub calibrated_at: Micros,
}

/// The shortlist line of a ranking without a bar: midway between the last of
/// the top fifth (at least 5) and the next.
fn shortlist_line(scores: &[f64]) -> f64 {
    match scores.len() {
        0 => 0.0,
        1 => scores[0],
        n => {
            let k = n.div_ceil(5).max(5).min(n - 1);
            0.5 * (scores[k - 1] + scores[k])
        }
    }
}

impl Calibrator {
    /// Each candidate's overall score distribution and group in the job's
    /// ranking (`None`: no calibrated score for the job).
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "compare"))]
    pub async fn compare(self: &Arc<Self>, org: &str, job_id: &str, candidates: &[&str]) -> Result<Compared, Error> {
        let ranking = self.ranking(org, job_id).await?;
        let wanted: HashMap<&str, usize> = candidates.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        let mut distributions = vec![None; candidates.len()];
        for e in &ranking.entries {
            if let Some(&i) = wanted.get(&*e.candidate_id) {
                distributions[i] = Some((e.distribution, e.group));
            }
        }
        Ok(Compared { distributions, calibrated_at: ranking.calibrated_at })
    }

    /// The next interviews for a job (see `calibration::decisions::plan`).
    /// Returns `Err(FailedPrecondition)` naming a requested candidate without
    /// a calibrated score for the job.
    #[tracing::instrument(name = "calibration", target = "scorecard::spans", level = "info", skip_all, fields(org = %org, operation = "plan"))]
    pub async fn plan(self: &Arc<Self>, org: &str, job_id: &str, q: PlanQuestion) -> Result<PlannedInterviews, Error> {
        let ranking = self.ranking(org, job_id).await?;
        let state = self.fresh(org).await?;
        let (model, shape, subjects, raters, typical, rater_ids, item_keys, line, shortlist) = {
            let s = lock(&state);
            let Some(job) = s.jobs.get(job_id) else {
                return Ok(PlannedInterviews {
                    suggestions: Vec::new(),
                    wrong_before: 0.0,
                    wrong_after: 0.0,
                    line: ranking.hiring_bar.unwrap_or(0.0),
                    shortlist: ranking.hiring_bar.is_none(),
                    calibrated_at: ranking.calibrated_at,
                });
            };
            let job_key = job.key.clone();
            let subject_of = |c: &str| s.subjects.get(&(job_key.clone(), Arc::from(c)));
            let ranked: Vec<&str> = ranking.entries.iter().map(|e| &*e.candidate_id).collect();
            let subjects: Vec<u32> = if q.candidates.is_empty() {
                ranked.iter().filter(|c| !q.settled.contains(**c)).filter_map(|c| subject_of(c)).collect()
            } else {
                let mut out = Vec::new();
                for c in &q.candidates {
                    match subject_of(c).filter(|_| ranked.contains(&c.as_str())) {
                        Some(subject) => out.push(subject),
                        None => {
                            return Err(Error::FailedPrecondition(format!(
                                "candidates/{c} has no scorecard for jobs/{job_id} yet: plan from their first interviews"
                            )));
                        }
                    }
                }
                out
            };
            let raters: Vec<Option<u32>> = if q.interviewers.is_empty() {
                (0..s.raters.ids.len() as u32).map(Some).collect()
            } else {
                q.interviewers.iter().map(|i| s.raters.get(i)).collect()
            };
            let rater_ids: Vec<String> =
                if q.interviewers.is_empty() { s.raters.ids.clone() } else { q.interviewers.clone() };
            let scores: Vec<f64> = ranking.entries.iter().map(|e| e.overall.mean).collect();
            let (line, shortlist) = match ranking.hiring_bar {
                Some(bar) => (bar, false),
                None => (shortlist_line(&scores), true),
            };
            let item_keys: HashMap<u32, String> = job.items.iter().map(|(k, i)| (*i, k.clone())).collect();
            let typical = s.typical_focus(ranking.entries.iter().filter_map(|e| subject_of(&e.candidate_id)));
            (s.model.clone(), job.shape.clone(), subjects, raters, typical, rater_ids, item_keys, line, shortlist)
        };
        let pool = raters.len().max(1);
        let max_per_rater =
            if q.max_per_interviewer > 0 { q.max_per_interviewer } else { (2 * q.slots).div_ceil(pool).max(1) };
        let calibrated_at = ranking.calibrated_at;
        let candidate_of: HashMap<u32, Arc<str>> = {
            let s = lock(&state);
            subjects.iter().map(|&sub| (sub, s.subjects.ids[sub as usize].1.clone())).collect()
        };
        tokio::task::spawn_blocking(move || {
            let request = PlanRequest {
                shape: &shape,
                bar: line,
                subjects: subjects.clone(),
                raters: raters.clone(),
                slots: q.slots,
                max_per_rater,
                focus: typical.min(shape.dimensions.iter().map(|d| d.items.len()).sum::<usize>().max(1)),
            };
            let plan = decisions::plan(&model, &request);
            let span = (shape.scale_max - shape.scale_min).max(f64::MIN_POSITIVE);
            let typical_noise = model.typical_noise.sqrt() * span;
            let line_name = if shortlist { "the shortlist line" } else { "the bar" };
            let suggestions = plan
                .interviews
                .iter()
                .map(|i| {
                    let keys = |items: &[u32]| -> Vec<String> {
                        items.iter().filter_map(|k| item_keys.get(k).cloned()).collect()
                    };
                    let interviews = {
                        let mut cards: Vec<u32> = model.ratings(i.subject).iter().map(|o| o.scorecard).collect();
                        cards.sort_unstable();
                        cards.dedup();
                        cards.len()
                    };
                    let who = match raters[i.rater] {
                        Some(r) => {
                            let noise = (model.noise_var[r as usize] + model.occasion_spread[r as usize]).sqrt() * span;
                            format!(
                                "{} scores with noise {noise:.2} points (typical {typical_noise:.2}) over {} ratings",
                                rater_ids[i.rater], model.rating_count[r as usize]
                            )
                        }
                        None => format!("{} has not rated yet (planned as a typical interviewer)", rater_ids[i.rater]),
                    };
                    let new = keys(&i.new_items);
                    let covers = if new.is_empty() {
                        String::new()
                    } else {
                        format!(" and would assess {}, not yet assessed", new.join(", "))
                    };
                    Suggestion {
                        candidate: candidate_of.get(&i.subject).map(|c| c.to_string()).unwrap_or_default(),
                        interviewer: rater_ids[i.rater].clone(),
                        competencies: keys(&i.items),
                        expected_gain: i.expected_gain,
                        p_before: i.p_before,
                        reason: format!(
                            "undecided: P(at or above {line_name}, {line:.2}) is {:.2} after {interviews} interview{}; {who}{covers}",
                            i.p_before,
                            if interviews == 1 { "" } else { "s" }
                        ),
                    }
                })
                .collect();
            PlannedInterviews {
                suggestions,
                wrong_before: plan.wrong_before,
                wrong_after: plan.wrong_after,
                line,
                shortlist,
                calibrated_at,
            }
        })
        .await
        .map_err(|e| Error::Internal(format!("interview plan: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::shortlist_line;

    #[test]
    fn the_shortlist_line_falls_below_the_top_fifth_and_at_least_five() {
        let scores: Vec<f64> = (0..50).map(|i| 5.0 - 0.05 * f64::from(i)).collect();
        // Top 10 of 50: between the 10th (4.55) and the 11th (4.50).
        assert!((shortlist_line(&scores) - 4.525).abs() < 1e-12);
        let few = [4.0, 3.5, 3.0, 2.0, 1.5, 1.0, 0.5];
        // Top 5 of 7: between the 5th (1.5) and the 6th (1.0).
        assert!((shortlist_line(&few) - 1.25).abs() < 1e-12, "top 5 of 7");
        assert_eq!(shortlist_line(&[3.0]), 3.0);
        assert!((shortlist_line(&[3.0, 2.0]) - 2.5).abs() < 1e-12);
    }
}

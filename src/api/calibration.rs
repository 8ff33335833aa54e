//! `CalibrationService`: calibrated rankings, candidate assessments, rater
//! reports, panel reliability, and a ranking stream. The numbers come from the
//! [`crate::calibrator::Calibrator`]; this layer checks roles, names and
//! existence, pages, and converts.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::{PageRequest, State};
use crate::auth::{self, Caller};
use crate::calibration::raters::{FlagKind, RaterReport};
use crate::calibration::scores::Score;
use crate::calibrator::{Ranking, ReliabilityFigures};
use crate::domain::names::Collection;
use crate::domain::{Role, validate};
use crate::error::{Error, Violations};
use crate::proto::{self, calibration_service_server::CalibrationService};
use crate::store::{Page, ScorecardFilter};

const READERS: [Role; 3] = [Role::Admin, Role::Integration, Role::Recruiter];

pub struct CalibrationApi {
    state: State,
}

fn ranking_page(job_name: &str, ranking: &Ranking, page: &PageRequest) -> Result<proto::Ranking, Error> {
    let start: usize = if page.after.is_empty() {
        0
    } else {
        page.after.parse().map_err(|_| Error::invalid("page_token", "is not a token this list returned"))?
    };
    let end = (start + page.size).min(ranking.entries.len());
    let entries = ranking.entries.get(start..end).unwrap_or_default();
    let to_dimension = |(key, score): &(Arc<str>, Option<Score>)| {
        score.map(|s| proto::DimensionScore {
            dimension: key.to_string(),
            score: s.mean,
            lower: s.lower,
            upper: s.upper,
            raw_mean: s.raw_mean,
        })
    };
    Ok(proto::Ranking {
        job: job_name.to_string(),
        entries: entries
            .iter()
            .enumerate()
            .map(|(i, e)| proto::RankingEntry {
                rank: (start + i + 1) as i32,
                candidate: Collection::Candidates.name(&e.candidate_id),
                score: e.overall.mean,
                score_lower: e.overall.lower,
                score_upper: e.overall.upper,
                raw_mean: e.overall.raw_mean,
                dimensions: e.dimensions.iter().filter_map(to_dimension).collect(),
                scorecard_count: e.scorecard_count as i32,
                flags: e.flags.clone(),
                p_above_bar: e.p_above_bar,
                tier: e.tier as i32,
            })
            .collect(),
        hiring_bar: ranking.hiring_bar,
        calibrate_time: timestamp(ranking.calibrated_at),
        next_page_token: page.next_token(end < ranking.entries.len(), Some(end.to_string())),
    })
}

/// A flag kind as people read it: `SEVERE` for `KIND_SEVERE` (an unknown
/// number as itself).
pub fn flag_name(kind: i32) -> String {
    proto::rater_flag::Kind::try_from(kind)
        .map(|k| k.as_str_name().trim_start_matches("KIND_").to_string())
        .unwrap_or_else(|_| kind.to_string())
}

/// The engine's flag as the proto enum.
pub fn flag_kind(kind: FlagKind) -> proto::rater_flag::Kind {
    use proto::rater_flag::Kind;
    match kind {
        FlagKind::InsufficientData => Kind::InsufficientData,
        FlagKind::Severe => Kind::Severe,
        FlagKind::Lenient => Kind::Lenient,
        FlagKind::Inconsistent => Kind::Inconsistent,
        FlagKind::Halo => Kind::Halo,
        FlagKind::CentralTendency => Kind::CentralTendency,
        FlagKind::Drift => Kind::Drift,
        FlagKind::RecommendationMismatch => Kind::RecommendationMismatch,
        FlagKind::ThinEvidence => Kind::ThinEvidence,
    }
}

fn report(rater: &str, r: &RaterReport) -> proto::RaterReport {
    proto::RaterReport {
        rater: rater.to_string(),
        rating_count: r.rating_count as i32,
        severity: r.severity,
        severity_lower: r.severity_lower,
        severity_upper: r.severity_upper,
        noise: r.noise,
        halo: r.halo,
        range_use: r.range_use,
        drift: r.drift,
        flags: r
            .flags
            .iter()
            .map(|f| proto::RaterFlag { kind: flag_kind(f.kind) as i32, detail: f.detail.clone() })
            .collect(),
        recommendation_agreement: r.recommendation_agreement,
        evidence_quality: r.evidence_quality,
    }
}

/// Raised a flag a recruiter should act on (not merely "too few ratings").
fn is_flagged(r: &RaterReport) -> bool {
    r.flags.iter().any(|f| f.kind != FlagKind::InsufficientData)
}

fn figures(f: &ReliabilityFigures) -> proto::ReliabilityFigures {
    proto::ReliabilityFigures {
        competency: f.competency.clone(),
        icc2_1: f.icc2_1,
        icc2_k: f.icc2_k,
        alpha_ordinal: f.alpha_ordinal,
        alpha_interval: f.alpha_interval,
        rater_count: f.rater_count as i32,
        subject_count: f.subject_count as i32,
    }
}

impl CalibrationApi {
    pub fn new(state: State) -> Self {
        Self { state }
    }

    /// The job's id, after checking it exists in the caller's organisation.
    async fn job(&self, caller: &Caller, name: &str, field: &str) -> Result<String, Error> {
        let id = Collection::Jobs.parse_required(name, field)?;
        match self.state.store.get_job(&caller.org, id).await? {
            Some(job) => Ok(job.id),
            None => Err(Error::NotFound(name.to_string())),
        }
    }

    pub(crate) async fn get_ranking_(
        &self,
        caller: Caller,
        req: proto::GetRankingRequest,
    ) -> Result<proto::Ranking, Error> {
        caller.require_any(&READERS)?;
        let job = self.job(&caller, &req.job, "job").await?;
        let page = PageRequest::parse(req.page_size, &req.page_token, &["GetRanking", &job])?;
        let ranking = self.state.calibrator.ranking(&caller.org, &job).await?;
        ranking_page(&req.job, &ranking, &page)
    }

    async fn assessment(
        &self,
        caller: Caller,
        req: proto::GetCandidateAssessmentRequest,
    ) -> Result<proto::CandidateAssessment, Error> {
        caller.require_any(&READERS)?;
        let mut v = Violations::new();
        let job_id = Collection::Jobs.parse_field(&req.job, "job", &mut v);
        let candidate_id = Collection::Candidates.parse_field(&req.candidate, "candidate", &mut v);
        v.into_result()?;
        let (job_id, candidate_id) = (job_id.unwrap_or_default(), candidate_id.unwrap_or_default());
        let org = &caller.org;
        if self.state.store.get_job(org, job_id).await?.is_none() {
            return Err(Error::NotFound(req.job));
        }
        if self.state.store.get_candidate(org, candidate_id).await?.is_none() {
            return Err(Error::NotFound(req.candidate));
        }
        let (scores, calibrated_at) = self.state.calibrator.assessment(org, job_id, candidate_id).await?;
        // The evidence behind the scores: the candidate's current scorecards for the job.
        let mut evidence: Vec<(String, proto::EvidenceItem)> = Vec::new();
        let filter = ScorecardFilter { job: job_id, candidate: candidate_id, ..Default::default() };
        let mut after = String::new();
        loop {
            let (page, more) = self.state.store.list_scorecards(org, filter, Page::new(&after, 1000)).await?;
            for s in &page {
                for r in &s.content.ratings {
                    evidence.push((
                        r.competency.clone(),
                        proto::EvidenceItem {
                            scorecard: Collection::Scorecards.name(&s.id),
                            interviewer: s.interviewer.clone(),
                            score: r.score,
                            evidence: r.evidence.clone(),
                        },
                    ));
                }
            }
            match (more, page.last()) {
                (true, Some(last)) => after = last.id.clone(),
                _ => break,
            }
        }
        Ok(proto::CandidateAssessment {
            job: req.job,
            candidate: req.candidate,
            competencies: scores
                .iter()
                .map(|c| proto::CompetencyScore {
                    competency: c.key.clone(),
                    score: c.score.mean,
                    lower: c.score.lower,
                    upper: c.score.upper,
                    raw_mean: c.score.raw_mean,
                    evidence: evidence.iter().filter(|(k, _)| *k == c.key).map(|(_, e)| e.clone()).collect(),
                })
                .collect(),
            calibrate_time: timestamp(calibrated_at),
        })
    }

    pub(crate) async fn list_reports(
        &self,
        caller: Caller,
        req: proto::ListRaterReportsRequest,
    ) -> Result<proto::ListRaterReportsResponse, Error> {
        caller.require_any(&READERS)?;
        let scope = if req.flagged_only { "flagged" } else { "all" };
        let page = PageRequest::parse(req.page_size, &req.page_token, &["ListRaterReports", scope])?;
        let reports = self.state.calibrator.rater_reports(&caller.org).await?;
        let selected: Vec<&(String, RaterReport)> = reports
            .iter()
            .filter(|(rater, r)| rater.as_str() > page.after.as_str() && (!req.flagged_only || is_flagged(r)))
            .take(page.size + 1)
            .collect();
        let more = selected.len() > page.size;
        let selected = &selected[..selected.len().min(page.size)];
        Ok(proto::ListRaterReportsResponse {
            reports: selected.iter().map(|(rater, r)| report(rater, r)).collect(),
            next_page_token: page.next_token(more, selected.last().map(|(rater, _)| rater.clone())),
        })
    }

    async fn get_report(&self, caller: Caller, req: proto::GetRaterReportRequest) -> Result<proto::RaterReport, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let mut v = Violations::new();
        validate::user_id(&mut v, "rater", &req.rater);
        v.into_result()?;
        if !caller.sees_everything() && req.rater != caller.user {
            return Err(Error::PermissionDenied("interviewers can read only their own rater report".into()));
        }
        let reports = self.state.calibrator.rater_reports(&caller.org).await?;
        let found = reports.iter().find(|(rater, _)| *rater == req.rater);
        found
            .map(|(rater, r)| report(rater, r))
            .ok_or_else(|| Error::NotFound(format!("rater report of `{}`", req.rater)))
    }

    /// Candidate names of a request, parsed and distinct, recording violations.
    fn candidate_ids<'a>(v: &mut Violations, field: &str, names: &'a [String]) -> Vec<&'a str> {
        let mut ids = Vec::with_capacity(names.len());
        for (n, name) in names.iter().enumerate() {
            let field = format!("{field}[{n}]");
            if let Some(id) = Collection::Candidates.parse_field(name, &field, v) {
                if ids.contains(&id) {
                    v.add(field, format!("`{name}` is listed twice"));
                } else {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// Why a candidate has no calibrated score for a job: `NotFound` when the
    /// organisation has no such candidate.
    async fn not_ranked(&self, org: &str, job: &str, candidate: &str) -> Error {
        match self.state.store.get_candidate(org, candidate).await {
            Ok(Some(_)) => Error::FailedPrecondition(format!(
                "candidates/{candidate} has no calibrated score for {job}: no scorecard about them for it yet"
            )),
            Ok(None) => Error::NotFound(format!("candidates/{candidate}")),
            Err(e) => e,
        }
    }

    async fn compare(
        &self,
        caller: Caller,
        req: proto::CompareCandidatesRequest,
    ) -> Result<proto::CandidateComparison, Error> {
        caller.require_any(&READERS)?;
        let mut v = Violations::new();
        let job_id = Collection::Jobs.parse_field(&req.job, "job", &mut v);
        if !(2..=50).contains(&req.candidates.len()) {
            v.add("candidates", format!("must name 2 to 50 candidates, not {}", req.candidates.len()));
        }
        let ids = Self::candidate_ids(&mut v, "candidates", &req.candidates);
        v.into_result()?;
        let job_id = self.job(&caller, &req.job, "job").await.map(|_| job_id.unwrap_or_default())?;
        let compared = self.state.calibrator.compare(&caller.org, job_id, &ids).await?;
        let mut found = Vec::with_capacity(ids.len());
        for (id, d) in ids.iter().zip(&compared.distributions) {
            match d {
                Some(d) => found.push(*d),
                None => return Err(self.not_ranked(&caller.org, &req.job, id).await),
            }
        }
        let mut flags = Vec::new();
        for i in 0..found.len() {
            for j in (i + 1)..found.len() {
                if found[i].1 != found[j].1 {
                    flags.push(format!(
                        "{} and {} are not comparable: no interviewer links their panels",
                        req.candidates[i], req.candidates[j]
                    ));
                }
            }
        }
        let rows = found
            .iter()
            .zip(&req.candidates)
            .map(|((a, _), name)| proto::ComparisonRow {
                candidate: name.clone(),
                p_above: found
                    .iter()
                    .map(|(b, _)| if std::ptr::eq(a, b) { 0.5 } else { crate::calibration::decisions::p_above(a, b) })
                    .collect(),
            })
            .collect();
        Ok(proto::CandidateComparison {
            job: req.job,
            candidates: req.candidates,
            rows,
            calibrate_time: timestamp(compared.calibrated_at),
            flags,
        })
    }

    async fn plan(&self, caller: Caller, req: proto::PlanInterviewsRequest) -> Result<proto::InterviewPlan, Error> {
        caller.require_any(&READERS)?;
        const MAX_CANDIDATES: usize = 1_000;
        const MAX_INTERVIEWERS: usize = 1_000;
        let mut v = Violations::new();
        let job_id = Collection::Jobs.parse_field(&req.job, "job", &mut v);
        if !(1..=200).contains(&req.slots) {
            v.add("slots", "must be 1..200");
        }
        if req.max_per_interviewer < 0 {
            v.add("max_per_interviewer", "must not be negative (0: twice the even share)");
        }
        if req.candidates.len() > MAX_CANDIDATES {
            v.add("candidates", format!("at most {MAX_CANDIDATES}"));
        }
        if req.interviewers.len() > MAX_INTERVIEWERS {
            v.add("interviewers", format!("at most {MAX_INTERVIEWERS}"));
        }
        let ids = Self::candidate_ids(&mut v, "candidates", &req.candidates);
        let mut interviewers: Vec<String> = Vec::new();
        for (n, i) in req.interviewers.iter().enumerate() {
            let field = format!("interviewers[{n}]");
            let before = v.len();
            validate::user_id(&mut v, &field, i);
            if v.len() == before && interviewers.contains(i) {
                v.add(field, format!("`{i}` is listed twice"));
            }
            interviewers.push(i.clone());
        }
        v.into_result()?;
        let org = &caller.org;
        let job_id = self.job(&caller, &req.job, "job").await.map(|_| job_id.unwrap_or_default())?;
        for id in &ids {
            if self.state.store.get_candidate(org, id).await?.is_none() {
                return Err(Error::NotFound(format!("candidates/{id}")));
            }
        }
        // Candidates whose latest decision is final are settled.
        let settled = if ids.is_empty() {
            self.state
                .store
                .latest_outcomes(org)
                .await?
                .into_iter()
                .filter(|(job, _, outcome)| job == job_id && *outcome != crate::domain::Outcome::Advanced)
                .map(|(_, candidate, _)| candidate)
                .collect()
        } else {
            Default::default()
        };
        let question = crate::calibrator::PlanQuestion {
            candidates: ids.iter().map(|c| c.to_string()).collect(),
            settled,
            interviewers,
            slots: req.slots as usize,
            max_per_interviewer: req.max_per_interviewer as usize,
        };
        let plan = self.state.calibrator.plan(org, job_id, question).await?;
        Ok(proto::InterviewPlan {
            job: req.job,
            suggestions: plan
                .suggestions
                .into_iter()
                .map(|s| proto::InterviewSuggestion {
                    candidate: Collection::Candidates.name(&s.candidate),
                    interviewer: s.interviewer,
                    competencies: s.competencies,
                    expected_gain: s.expected_gain,
                    reason: s.reason,
                    p_above_line: s.p_before,
                })
                .collect(),
            expected_wrong_decisions_before: plan.wrong_before,
            expected_wrong_decisions_after: plan.wrong_after,
            decision_line: plan.line,
            shortlist: plan.shortlist,
            calibrate_time: timestamp(plan.calibrated_at),
        })
    }

    pub(crate) async fn reliability(
        &self,
        caller: Caller,
        req: proto::GetPanelReliabilityRequest,
    ) -> Result<proto::PanelReliability, Error> {
        caller.require_any(&READERS)?;
        let org = &caller.org;
        let jobs: Vec<String> = match (req.job.is_empty(), req.rubric.is_empty()) {
            (false, true) => vec![self.job(&caller, &req.job, "job").await?],
            (true, false) => {
                let rubric = Collection::Rubrics.parse_required(&req.rubric, "rubric")?;
                if self.state.store.get_rubric(org, rubric, 0).await?.is_none() {
                    return Err(Error::NotFound(req.rubric));
                }
                let mut ids = Vec::new();
                let mut after = String::new();
                loop {
                    let (page, more) = self.state.store.list_jobs(org, Page::new(&after, 1000)).await?;
                    ids.extend(page.iter().filter(|j| j.rubric_id == rubric).map(|j| j.id.clone()));
                    match (more, page.last()) {
                        (true, Some(last)) => after = last.id.clone(),
                        _ => break,
                    }
                }
                ids
            }
            _ => {
                return Err(Error::InvalidArgument(vec![
                    crate::error::FieldViolation::new("job", "set exactly one of job and rubric"),
                    crate::error::FieldViolation::new("rubric", "set exactly one of job and rubric"),
                ]));
            }
        };
        let (per, overall) = self.state.calibrator.reliability(org, &jobs).await?;
        Ok(proto::PanelReliability {
            competencies: per.iter().map(figures).collect(),
            overall: Some(figures(&overall)),
        })
    }
}

#[tonic::async_trait]
impl CalibrationService for CalibrationApi {
    type WatchRankingStream = Pin<Box<dyn Stream<Item = Result<proto::Ranking, Status>> + Send>>;

    rpc!(get_ranking, get_ranking_, proto::GetRankingRequest, proto::Ranking);
    rpc!(get_candidate_assessment, assessment, proto::GetCandidateAssessmentRequest, proto::CandidateAssessment);
    rpc!(list_rater_reports, list_reports, proto::ListRaterReportsRequest, proto::ListRaterReportsResponse);
    rpc!(get_rater_report, get_report, proto::GetRaterReportRequest, proto::RaterReport);
    rpc!(get_panel_reliability, reliability, proto::GetPanelReliabilityRequest, proto::PanelReliability);
    rpc!(compare_candidates, compare, proto::CompareCandidatesRequest, proto::CandidateComparison);
    rpc!(plan_interviews, plan, proto::PlanInterviewsRequest, proto::InterviewPlan);

    async fn watch_ranking(
        &self,
        r: Request<proto::WatchRankingRequest>,
    ) -> Result<Response<Self::WatchRankingStream>, Status> {
        let caller = auth::caller(&r)?;
        caller.require_any(&READERS)?;
        let req = r.into_inner();
        let job = self.job(&caller, &req.job, "job").await?;
        let permit = self.state.streams.open(&caller)?;
        let calibrator = self.state.calibrator.clone();
        // Subscribe before the first snapshot, so no change falls between
        // them: this replica's changes (and refits) arrive on `changes`; any
        // replica's scorecard changes show in the organisation's event feed,
        // and reading the ranking catches this replica up with them.
        let mut changes = calibrator.subscribe();
        let mut latest = self.state.feeds.subscribe(&caller.org);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<proto::Ranking, Status>>(4);
        let org = caller.org.clone();
        let page = PageRequest::parse(0, "", &["WatchRanking", &job])?;
        let page = PageRequest { size: validate::limits::MAX_PAGE_SIZE, ..page };
        tokio::spawn(async move {
            let _permit = permit; // held while the stream is open
            let page_of = |ranking: Result<std::sync::Arc<Ranking>, Error>| {
                ranking.and_then(|r| ranking_page(&req.job, &r, &page)).map_err(Status::from)
            };
            latest.borrow_and_update();
            let mut sent = page_of(calibrator.ranking(&org, &job).await);
            if tx.send(sent.clone()).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    change = changes.recv() => match change {
                        Ok((o, j)) if o == org && j == job => {}
                        Ok(_) => continue,
                        // Missed some changes: the next snapshot covers them.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    changed = latest.changed() => {
                        if changed.is_err() {
                            return; // the server is stopping
                        }
                    }
                    // The client went away: stop now, not at the next change.
                    () = tx.closed() => return,
                }
                // Only a ranking that differs from the last one sent: events
                // of other jobs move the feed too.
                let next = page_of(calibrator.ranking(&org, &job).await);
                if same_ranking(&next, &sent) {
                    continue;
                }
                sent = next;
                if tx.send(sent.clone()).await.is_err() {
                    return; // the client went away
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

/// Whether two snapshots of a ranking are equal but for when they were fitted.
fn same_ranking(a: &Result<proto::Ranking, Status>, b: &Result<proto::Ranking, Status>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a.entries == b.entries && a.next_page_token == b.next_page_token,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_and_the_proto_spell_every_flag_alike() {
        use FlagKind::*;
        for kind in [
            InsufficientData,
            Severe,
            Lenient,
            Inconsistent,
            Halo,
            CentralTendency,
            Drift,
            RecommendationMismatch,
            ThinEvidence,
        ] {
            assert_eq!(flag_kind(kind).as_str_name(), format!("KIND_{}", kind.name()));
            assert_eq!(flag_name(flag_kind(kind) as i32), kind.name());
        }
    }
}

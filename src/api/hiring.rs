//! `HiringService`: jobs, candidates (with erasure) and interviews.

use super::convert::micros;
use super::{PageRequest, State};
use crate::auth::Caller;
use crate::domain::names::Collection;
use crate::domain::validate::{self, limits};
use crate::domain::{Candidate, CandidateId, Decision, Interview, Job, Role, UserId, new_id, now_micros};
use crate::error::{Error, Violations};
use crate::proto::{self, hiring_service_server::HiringService};

const WRITERS: [Role; 2] = [Role::Admin, Role::Integration];
/// Who records and reads hiring decisions.
const DECIDERS: [Role; 3] = [Role::Admin, Role::Integration, Role::Recruiter];

pub struct HiringApi {
    state: State,
}

/// The interviewer a caller is confined to: `None` for callers who see the whole
/// organisation, their own user id for a plain interviewer. Asking for someone
/// else's interviews as a plain interviewer is refused.
fn confine_to_self<'a>(caller: &'a Caller, requested: &'a str) -> Result<&'a str, Error> {
    if caller.sees_everything() {
        return Ok(requested);
    }
    if !requested.is_empty() && requested != caller.user {
        return Err(Error::PermissionDenied("interviewers can list only their own interviews".into()));
    }
    Ok(&caller.user)
}

/// An interview's required `scheduled_time`, recording a violation when unset or invalid.
pub(super) fn scheduled_time(v: &mut Violations, ts: Option<&prost_types::Timestamp>) -> Option<crate::domain::Micros> {
    let Some(ts) = ts else {
        v.add("interview.scheduled_time", "is required");
        return None;
    };
    let m = micros(ts);
    if m.is_none() {
        v.add("interview.scheduled_time", "is not a valid timestamp");
    }
    m
}

/// Checks a hiring bar: a finite number within the rubric's scale.
fn hiring_bar(v: &mut Violations, field: &str, bar: Option<f64>, rubric: &crate::domain::Rubric) {
    let Some(bar) = bar else { return };
    let (min, max) = (f64::from(rubric.content.scale.min), f64::from(rubric.content.scale.max));
    if !bar.is_finite() || bar < min || bar > max {
        v.add(field, format!("must be within the rubric's scale, {min}..{max}"));
    }
}

/// Checks that an interview's focus competencies are the job rubric's, each once.
pub(super) fn focus_in_rubric(v: &mut Violations, rubric: &crate::domain::Rubric, focus: &[String]) {
    let mut seen = std::collections::HashSet::new();
    for (n, key) in focus.iter().enumerate() {
        let field = format!("interview.focus_competencies[{n}]");
        if rubric.content.competency(key).is_none() {
            v.add(field, format!("`{key}` is not a competency of the job's rubric"));
        } else if !seen.insert(key) {
            v.add(field, format!("`{key}` is listed twice"));
        }
    }
}

impl HiringApi {
    pub fn new(state: State) -> Self {
        Self { state }
    }

    async fn create_job(&self, caller: Caller, req: proto::CreateJobRequest) -> Result<proto::Job, Error> {
        caller.require_any(&WRITERS)?;
        let job = req.job.ok_or_else(|| Error::invalid("job", "is required"))?;
        let mut v = Violations::new();
        validate::text(&mut v, "job.title", &job.title, true, limits::TITLE);
        validate::text(&mut v, "job.external_id", &job.external_id, false, limits::EXTERNAL_ID);
        let rubric_id = Collection::Rubrics.parse_field(&job.rubric, "job.rubric", &mut v);
        if job.rubric_revision < 0 {
            v.add("job.rubric_revision", "must not be negative");
        }
        v.into_result()?;
        let rubric_id = rubric_id.unwrap_or_default();
        let rubric = self.state.store.get_rubric(&caller.org, rubric_id, i64::from(job.rubric_revision)).await?;
        let Some(rubric) = rubric else {
            return Err(match job.rubric_revision {
                0 => Error::NotFound(job.rubric),
                n => Error::NotFound(format!("revision {n} of {}", job.rubric)),
            });
        };
        let mut v = Violations::new();
        hiring_bar(&mut v, "job.hiring_bar", job.hiring_bar, &rubric);
        v.into_result()?;
        let now = now_micros();
        let created = Job {
            id: new_id(),
            title: job.title,
            external_id: job.external_id,
            rubric_id: rubric.id.clone(),
            rubric_revision: rubric.revision,
            created_at: now,
            updated_at: now,
            hiring_bar: job.hiring_bar,
        };
        self.state.store.create_job(&caller.org, &created).await?;
        Ok((&created).into())
    }

    /// `UpdateJob` (AIP-134): the title and the hiring bar.
    async fn update_job(&self, caller: Caller, req: proto::UpdateJobRequest) -> Result<proto::Job, Error> {
        caller.require_any(&WRITERS)?;
        let job = req.job.ok_or_else(|| Error::invalid("job", "is required"))?;
        let id = Collection::Jobs.parse_required(&job.name, "job.name")?;
        const UPDATABLE: [&str; 2] = ["title", "hiring_bar"];
        let mut v = Violations::new();
        let paths: Vec<String> = match &req.update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths.clone(),
            // No mask: every updatable field the request sets.
            _ => UPDATABLE
                .iter()
                .filter(|p| match **p {
                    "title" => !job.title.is_empty(),
                    _ => job.hiring_bar.is_some(),
                })
                .map(|p| p.to_string())
                .collect(),
        };
        let paths: Vec<String> =
            if paths.iter().any(|p| p == "*") { UPDATABLE.iter().map(|p| p.to_string()).collect() } else { paths };
        for (n, path) in paths.iter().enumerate() {
            if !UPDATABLE.contains(&path.as_str()) {
                let why = match path.as_str() {
                    "rubric" | "rubric_revision" => "is fixed when the job is created".to_string(),
                    "name" | "create_time" | "update_time" => "is output only".to_string(),
                    "external_id" => "is the ATS's key and cannot change".to_string(),
                    other => format!("`{other}` is not a field of Job that can be updated (title, hiring_bar)"),
                };
                v.add(format!("update_mask.paths[{n}]"), why);
            }
        }
        if paths.is_empty() && v.is_empty() {
            v.add("update_mask", "names no field to update, and the job sets none (title, hiring_bar)");
        }
        let wants = |field: &str| paths.iter().any(|p| p == field);
        if wants("title") {
            validate::text(&mut v, "job.title", &job.title, true, limits::TITLE);
        }
        v.into_result()?;
        let org = &caller.org;
        let current = self.state.store.read_job(org, id).await?.ok_or_else(|| Error::NotFound(job.name.clone()))?;
        if wants("hiring_bar") {
            let rubric = self
                .state
                .store
                .get_rubric(org, &current.rubric_id, current.rubric_revision)
                .await?
                .ok_or_else(|| Error::Internal(format!("the rubric of {} is missing", job.name)))?;
            let mut v = Violations::new();
            hiring_bar(&mut v, "job.hiring_bar", job.hiring_bar, &rubric);
            v.into_result()?;
        }
        let title = if wants("title") { job.title } else { current.title };
        let bar = if wants("hiring_bar") { job.hiring_bar } else { current.hiring_bar };
        let updated = self
            .state
            .store
            .update_job(org, id, &title, bar, now_micros())
            .await?
            .ok_or_else(|| Error::NotFound(job.name.clone()))?;
        // The bar changes what a ranking's reader sees: tell watchers and
        // raise `ranking.changed` if probabilities or tiers moved.
        self.state.calibrator.job_changed(org, id);
        Ok((&updated).into())
    }

    pub(crate) async fn get_job(&self, caller: Caller, req: proto::GetJobRequest) -> Result<proto::Job, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let id = Collection::Jobs.parse_required(&req.name, "name")?;
        let job = self.state.store.read_job(&caller.org, id).await?;
        Ok((&job.ok_or(Error::NotFound(req.name))?).into())
    }

    pub(crate) async fn list_jobs(
        &self,
        caller: Caller,
        req: proto::ListJobsRequest,
    ) -> Result<proto::ListJobsResponse, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let mut v = Violations::new();
        let since = super::updated_after(&mut v, req.update_time_after.as_ref());
        v.into_result()?;
        let page = PageRequest::parse(req.page_size, &req.page_token, &["ListJobs", &since.to_string()])?;
        let (jobs, more) = self.state.store.list_jobs(&caller.org, page.store_page_since(since)).await?;
        Ok(proto::ListJobsResponse {
            next_page_token: page.next_token(more, jobs.last().map(|j| j.id.clone())),
            jobs: jobs.iter().map(Into::into).collect(),
        })
    }

    async fn create_candidate(
        &self,
        caller: Caller,
        req: proto::CreateCandidateRequest,
    ) -> Result<proto::Candidate, Error> {
        caller.require_any(&WRITERS)?;
        let c = req.candidate.ok_or_else(|| Error::invalid("candidate", "is required"))?;
        let mut v = Violations::new();
        validate::text(&mut v, "candidate.external_id", &c.external_id, true, limits::EXTERNAL_ID);
        if c.external_id.starts_with("erased:") {
            v.add("candidate.external_id", "must not start with `erased:` (reserved for erased candidates)");
        }
        validate::text(&mut v, "candidate.display_name", &c.display_name, true, limits::TITLE);
        validate::email(&mut v, "candidate.email", &c.email);
        v.into_result()?;
        let now = now_micros();
        let created = Candidate {
            id: new_id(),
            external_id: c.external_id,
            display_name: c.display_name,
            email: c.email,
            erased_at: None,
            created_at: now,
            updated_at: now,
        };
        self.state.store.create_candidate(&caller.org, &created).await?;
        Ok((&created).into())
    }

    pub(crate) async fn get_candidate(
        &self,
        caller: Caller,
        req: proto::GetCandidateRequest,
    ) -> Result<proto::Candidate, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let id = Collection::Candidates.parse_required(&req.name, "name")?;
        let candidate = self.state.store.get_candidate(&caller.org, id).await?;
        let candidate = candidate.ok_or_else(|| Error::NotFound(req.name.clone()))?;
        if !caller.sees_everything()
            && !self.state.store.interviews_candidate(&caller.org, UserId(&caller.user), CandidateId(id)).await?
        {
            return Err(Error::PermissionDenied("interviewers can read only candidates they interview".into()));
        }
        Ok((&candidate).into())
    }

    async fn list_candidates(
        &self,
        caller: Caller,
        req: proto::ListCandidatesRequest,
    ) -> Result<proto::ListCandidatesResponse, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let mut v = Violations::new();
        let since = super::updated_after(&mut v, req.update_time_after.as_ref());
        v.into_result()?;
        let page = PageRequest::parse(req.page_size, &req.page_token, &["ListCandidates", &since.to_string()])?;
        let interviewer = confine_to_self(&caller, "")?;
        let (candidates, more) =
            self.state.store.list_candidates(&caller.org, interviewer, page.store_page_since(since)).await?;
        Ok(proto::ListCandidatesResponse {
            next_page_token: page.next_token(more, candidates.last().map(|c| c.id.clone())),
            candidates: candidates.iter().map(Into::into).collect(),
        })
    }

    async fn erase_candidate(
        &self,
        caller: Caller,
        req: proto::EraseCandidateRequest,
    ) -> Result<proto::Candidate, Error> {
        caller.require_any(&WRITERS)?;
        let id = Collection::Candidates.parse_required(&req.name, "name")?;
        let erased = self.state.store.erase_candidate(&caller.org, id, now_micros()).await?;
        let erased = erased.ok_or(Error::NotFound(req.name))?;
        tracing::info!(candidate = %erased.id, "candidate personal data erased");
        // Erased evidence no longer counts for or against its raters.
        self.state.calibrator.invalidate(&caller.org);
        Ok((&erased).into())
    }

    async fn create_interview(
        &self,
        caller: Caller,
        req: proto::CreateInterviewRequest,
    ) -> Result<proto::Interview, Error> {
        caller.require_any(&WRITERS)?;
        let i = req.interview.ok_or_else(|| Error::invalid("interview", "is required"))?;
        let mut v = Violations::new();
        let job_id = Collection::Jobs.parse_field(&i.job, "interview.job", &mut v);
        let candidate_id = Collection::Candidates.parse_field(&i.candidate, "interview.candidate", &mut v);
        validate::user_id(&mut v, "interview.interviewer", &i.interviewer);
        validate::text(&mut v, "interview.external_id", &i.external_id, false, limits::EXTERNAL_ID);
        if i.focus_competencies.is_empty() || i.focus_competencies.len() > limits::FOCUS_COMPETENCIES {
            v.add("interview.focus_competencies", format!("must name 1..{} competencies", limits::FOCUS_COMPETENCIES));
        }
        let scheduled_at = scheduled_time(&mut v, i.scheduled_time.as_ref());
        v.into_result()?;
        let (job_id, candidate_id) = (job_id.unwrap_or_default(), candidate_id.unwrap_or_default());

        let org = &caller.org;
        let job = self.state.store.get_job(org, job_id).await?.ok_or_else(|| Error::NotFound(i.job.clone()))?;
        let candidate = self
            .state
            .store
            .get_candidate(org, candidate_id)
            .await?
            .ok_or_else(|| Error::NotFound(i.candidate.clone()))?;
        if candidate.erased_at.is_some() {
            return Err(Error::FailedPrecondition(format!("{} was erased", i.candidate)));
        }
        let mut v = Violations::new();
        let rubric = self.state.store.get_rubric(org, &job.rubric_id, job.rubric_revision).await?;
        let rubric = rubric.ok_or_else(|| Error::Internal(format!("job {} has no rubric revision", job.id)))?;
        focus_in_rubric(&mut v, &rubric, &i.focus_competencies);
        v.into_result()?;

        let now = now_micros();
        let created = Interview {
            id: new_id(),
            job_id: job_id.to_string(),
            candidate_id: candidate_id.to_string(),
            interviewer: i.interviewer,
            focus_competencies: i.focus_competencies,
            scheduled_at: scheduled_at.unwrap_or_default(),
            scorecard_id: None,
            external_id: i.external_id,
            created_at: now,
            updated_at: now,
        };
        self.state.store.create_interview(org, &created).await?;
        Ok((&created).into())
    }

    async fn get_interview(&self, caller: Caller, req: proto::GetInterviewRequest) -> Result<proto::Interview, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let id = Collection::Interviews.parse_required(&req.name, "name")?;
        let interview = self.state.store.get_interview(&caller.org, id).await?;
        let interview = interview.ok_or(Error::NotFound(req.name))?;
        if !caller.sees_everything() && interview.interviewer != caller.user {
            return Err(Error::PermissionDenied("interviewers can read only their own interviews".into()));
        }
        Ok((&interview).into())
    }

    async fn list_interviews(
        &self,
        caller: Caller,
        req: proto::ListInterviewsRequest,
    ) -> Result<proto::ListInterviewsResponse, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let interviewer = confine_to_self(&caller, &req.interviewer)?;
        let mut v = Violations::new();
        let job = Collection::Jobs.parse_optional(&req.job, "job", &mut v).unwrap_or_default();
        let candidate = Collection::Candidates.parse_optional(&req.candidate, "candidate", &mut v).unwrap_or_default();
        validate::text(&mut v, "interviewer", &req.interviewer, false, limits::USER_ID);
        let since = super::updated_after(&mut v, req.update_time_after.as_ref());
        v.into_result()?;
        let since_text = since.to_string();
        let page = PageRequest::parse(
            req.page_size,
            &req.page_token,
            &["ListInterviews", job, candidate, &req.interviewer, &since_text],
        )?;
        let (interviews, more) = self
            .state
            .store
            .list_interviews(&caller.org, job, candidate, interviewer, page.store_page_since(since))
            .await?;
        Ok(proto::ListInterviewsResponse {
            next_page_token: page.next_token(more, interviews.last().map(|i| i.id.clone())),
            interviews: interviews.iter().map(Into::into).collect(),
        })
    }

    async fn list_overdue(
        &self,
        caller: Caller,
        req: proto::ListOverdueInterviewsRequest,
    ) -> Result<proto::ListOverdueInterviewsResponse, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let interviewer = confine_to_self(&caller, &req.interviewer)?;
        let mut v = Violations::new();
        let job = Collection::Jobs.parse_optional(&req.job, "job", &mut v).unwrap_or_default();
        validate::text(&mut v, "interviewer", &req.interviewer, false, limits::USER_ID);
        v.into_result()?;
        let page =
            PageRequest::parse(req.page_size, &req.page_token, &["ListOverdueInterviews", job, &req.interviewer])?;
        // The cursor is "<scheduled_at>:<id>" of the last interview returned.
        let after = match page.after.split_once(':') {
            None => (i64::MIN, ""),
            Some((at, id)) => {
                (at.parse().map_err(|_| Error::invalid("page_token", "is not a token this list returned"))?, id)
            }
        };
        let (interviews, more) = self
            .state
            .store
            .list_overdue_interviews(&caller.org, job, interviewer, now_micros(), after, page.size)
            .await?;
        Ok(proto::ListOverdueInterviewsResponse {
            next_page_token: page.next_token(more, interviews.last().map(|i| format!("{}:{}", i.scheduled_at, i.id))),
            interviews: interviews.iter().map(Into::into).collect(),
        })
    }
}

impl HiringApi {
    async fn record_decision(
        &self,
        caller: Caller,
        req: proto::RecordDecisionRequest,
    ) -> Result<proto::Decision, Error> {
        caller.require_any(&DECIDERS)?;
        let mut v = Violations::new();
        let job = Collection::Jobs.parse_field(&req.job, "job", &mut v);
        let candidate = Collection::Candidates.parse_field(&req.candidate, "candidate", &mut v);
        let now = now_micros();
        let (outcome, decided_at) = super::convert::decision_fields(
            &mut v,
            "",
            req.outcome,
            &req.reason,
            &req.external_id,
            req.decide_time.as_ref(),
            now,
        );
        v.into_result()?;
        let decision = Decision {
            id: new_id(),
            job_id: job.unwrap_or_default().to_string(),
            candidate_id: candidate.unwrap_or_default().to_string(),
            outcome,
            reason: req.reason,
            decided_by: caller.user.clone(),
            decided_at,
            external_id: req.external_id,
            created_at: now,
        };
        self.state.store.record_decision(&caller.org, &decision).await?;
        Ok((&decision).into())
    }

    async fn list_decisions(
        &self,
        caller: Caller,
        req: proto::ListDecisionsRequest,
    ) -> Result<proto::ListDecisionsResponse, Error> {
        caller.require_any(&DECIDERS)?;
        let mut v = Violations::new();
        let job = Collection::Jobs.parse_optional(&req.job, "job", &mut v).unwrap_or_default();
        let candidate = Collection::Candidates.parse_optional(&req.candidate, "candidate", &mut v).unwrap_or_default();
        v.into_result()?;
        let page = PageRequest::parse(req.page_size, &req.page_token, &["ListDecisions", job, candidate])?;
        let (decisions, more) = self.state.store.list_decisions(&caller.org, job, candidate, page.store_page()).await?;
        Ok(proto::ListDecisionsResponse {
            next_page_token: page.next_token(more, decisions.last().map(|d| d.id.clone())),
            decisions: decisions.iter().map(Into::into).collect(),
        })
    }
}

#[tonic::async_trait]
impl HiringService for HiringApi {
    rpc!(record_decision, record_decision, proto::RecordDecisionRequest, proto::Decision);
    rpc!(list_decisions, list_decisions, proto::ListDecisionsRequest, proto::ListDecisionsResponse);
    rpc!(create_job, create_job, proto::CreateJobRequest, proto::Job);
    rpc!(get_job, get_job, proto::GetJobRequest, proto::Job);
    rpc!(update_job, update_job, proto::UpdateJobRequest, proto::Job);
    rpc!(list_jobs, list_jobs, proto::ListJobsRequest, proto::ListJobsResponse);
    rpc!(create_candidate, create_candidate, proto::CreateCandidateRequest, proto::Candidate);
    rpc!(get_candidate, get_candidate, proto::GetCandidateRequest, proto::Candidate);
    rpc!(list_candidates, list_candidates, proto::ListCandidatesRequest, proto::ListCandidatesResponse);
    rpc!(erase_candidate, erase_candidate, proto::EraseCandidateRequest, proto::Candidate);
    rpc!(create_interview, create_interview, proto::CreateInterviewRequest, proto::Interview);
    rpc!(get_interview, get_interview, proto::GetInterviewRequest, proto::Interview);
    rpc!(list_interviews, list_interviews, proto::ListInterviewsRequest, proto::ListInterviewsResponse);
    rpc!(
        list_overdue_interviews,
        list_overdue,
        proto::ListOverdueInterviewsRequest,
        proto::ListOverdueInterviewsResponse
    );
}

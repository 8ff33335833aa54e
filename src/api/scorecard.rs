//! `ScorecardService`: submission (idempotent), amendment (every revision kept)
//! and blind-review reads.

use std::sync::Arc;

use prost::Message;
use sha2::Digest;

use super::convert::{self, ratings_from_proto, recommendation_from_proto};
use super::{PageRequest, State};
use crate::auth::Caller;
use crate::domain::names::Collection;
use crate::domain::validate::{self, limits};
use crate::domain::{CandidateId, Interview, Role, Rubric, ScorecardContent, UserId, new_id, now_micros};
use crate::error::{Error, Violations};
use crate::proto::{self, scorecard_service_server::ScorecardService};
use crate::store::{Amendment, NewScorecard, ScorecardFilter, SubmitOutcome};

/// Roles that may write scorecards; admins and integrations on behalf of any
/// interviewer, interviewers for themselves.
const WRITERS: [Role; 3] = [Role::Interviewer, Role::Integration, Role::Admin];

pub struct ScorecardApi {
    state: State,
}

/// Whether the caller may submit and amend for any interviewer, not only for their own interviews.
fn writes_for_anyone(caller: &Caller) -> bool {
    caller.has(Role::Admin) || caller.has(Role::Integration)
}

impl ScorecardApi {
    pub fn new(state: State) -> Self {
        Self { state }
    }

    /// Checks ratings, recommendation and summary against the interview's rubric
    /// and focus, recording violations in `v`; returns the content and warnings.
    async fn checked_content(
        &self,
        org: &str,
        interview: &Interview,
        ratings: Vec<proto::Rating>,
        recommendation: i32,
        summary: String,
        v: &mut Violations,
    ) -> Result<(ScorecardContent, Vec<String>, Arc<Rubric>), Error> {
        let job = self.state.store.get_job(org, &interview.job_id).await?;
        let job = job.ok_or_else(|| Error::Internal(format!("interview {} has no job", interview.id)))?;
        let rubric = self.state.store.get_rubric(org, &job.rubric_id, job.rubric_revision).await?;
        let rubric = rubric.ok_or_else(|| Error::Internal(format!("job {} has no rubric revision", job.id)))?;
        let recommendation = recommendation_from_proto(recommendation);
        if recommendation.is_none() {
            v.add("recommendation", "is required: RECOMMENDATION_STRONG_NO, _NO, _YES or _STRONG_YES");
        }
        let content = ScorecardContent {
            ratings: ratings_from_proto(ratings),
            recommendation: recommendation.unwrap_or(crate::domain::Recommendation::No),
            summary,
        };
        let warnings = validate::scorecard(&content, rubric.content.scale, &interview.focus_competencies, v);
        Ok((content, warnings, rubric))
    }

    /// Refuses new free text about a candidate whose personal data was erased.
    async fn ensure_not_erased(&self, org: &str, candidate_id: &str) -> Result<(), Error> {
        let candidate = self.state.store.get_candidate(org, candidate_id).await?;
        if candidate.is_some_and(|c| c.erased_at.is_some()) {
            return Err(crate::store::erased_candidate());
        }
        Ok(())
    }

    async fn submit(&self, caller: Caller, req: proto::SubmitScorecardRequest) -> Result<proto::Scorecard, Error> {
        caller.require_any(&WRITERS)?;
        let org = &caller.org;
        let interview_id = Collection::Interviews.parse_required(&req.interview, "interview")?;
        let found = self.state.store.interview_for_submission(org, interview_id).await?;
        // Whether the candidate was erased is decided inside the write (the
        // erasure fence), after a retry's replay: not from this read.
        let (interview, _) = found.ok_or_else(|| Error::NotFound(req.interview.clone()))?;
        if !writes_for_anyone(&caller) && interview.interviewer != caller.user {
            return Err(Error::PermissionDenied("interviewers can submit only for interviews assigned to them".into()));
        }

        // Fingerprint of the whole request: a retry must say exactly the same.
        let request_hash = hex::encode(sha2::Sha256::digest(req.encode_to_vec()));
        let mut v = Violations::new();
        validate::request_id(&mut v, "request_id", &req.request_id);
        let (content, warnings, rubric) =
            self.checked_content(org, &interview, req.ratings, req.recommendation, req.summary, &mut v).await?;
        v.into_result()?;

        // From here the submission completes even if the caller goes away
        // (deadline, disconnect): once queued it may commit, and a committed
        // scorecard must reach the calibration state.
        let state = self.state.clone();
        let (org, author, request_id) = (caller.org.clone(), caller.user.clone(), req.request_id);
        let submission = tokio::spawn(async move {
            let id = new_id();
            let outcome = state
                .store
                .submit_scorecard(
                    &org,
                    NewScorecard {
                        id: &id,
                        interview: &interview,
                        content: &content,
                        author: &author,
                        request_id: &request_id,
                        request_hash: &request_hash,
                        now: now_micros(),
                    },
                )
                .await?;
            match outcome {
                SubmitOutcome::Created(s) => {
                    tracing::info!(scorecard = %s.id, interview = %interview.id, "scorecard submitted");
                    // Before acknowledging: a ranking read after this call reflects it.
                    state.calibrator.committed(&org, &s, &rubric).await?;
                    Ok::<_, Error>(s)
                }
                SubmitOutcome::Replayed(s) => {
                    tracing::info!(scorecard = %s.id, "scorecard submission replayed");
                    Ok(s)
                }
            }
        });
        let scorecard =
            submission.await.map_err(|e| Error::Internal(format!("submission task ended early: {e}")))??;
        Ok(convert::scorecard(&scorecard, warnings))
    }

    async fn import(
        &self,
        caller: Caller,
        stream: tonic::Streaming<proto::ImportScorecardsRequest>,
    ) -> Result<proto::ImportScorecardsResponse, Error> {
        super::import::import(&self.state, caller, stream).await
    }

    async fn get(&self, caller: Caller, req: proto::GetScorecardRequest) -> Result<proto::Scorecard, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
        let id = Collection::Scorecards.parse_required(&req.name, "name")?;
        if req.revision < 0 {
            return Err(Error::invalid("revision", "must not be negative"));
        }
        let org = &caller.org;
        let scorecard = self.state.store.get_scorecard(org, id, i64::from(req.revision)).await?;
        let scorecard = scorecard.ok_or_else(|| match req.revision {
            0 => Error::NotFound(req.name.clone()),
            n => Error::NotFound(format!("revision {n} of {}", req.name)),
        })?;
        let blind = !caller.sees_everything()
            && scorecard.interviewer != caller.user
            && !self
                .state
                .store
                .has_submitted_for_candidate(org, UserId(&caller.user), CandidateId(&scorecard.candidate_id))
                .await?;
        if blind {
            return Err(Error::PermissionDenied(
                "blind review: submit your own scorecard for this candidate before reading others'".into(),
            ));
        }
        Ok(convert::scorecard(&scorecard, Vec::new()))
    }

    async fn list(
        &self,
        caller: Caller,
        req: proto::ListScorecardsRequest,
    ) -> Result<proto::ListScorecardsResponse, Error> {
        caller.require_any(&Role::HIRING_TEAM)?;
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
            &["ListScorecards", job, candidate, &req.interviewer, &since_text],
        )?;
        let filter = ScorecardFilter {
            job,
            candidate,
            interviewer: &req.interviewer,
            blind_viewer: if caller.sees_everything() { "" } else { &caller.user },
        };
        let (scorecards, more) =
            self.state.store.list_scorecards(&caller.org, filter, page.store_page_since(since)).await?;
        Ok(proto::ListScorecardsResponse {
            next_page_token: page.next_token(more, scorecards.last().map(|s| s.id.clone())),
            scorecards: scorecards.iter().map(|s| convert::scorecard(s, Vec::new())).collect(),
        })
    }

    async fn amend(&self, caller: Caller, req: proto::AmendScorecardRequest) -> Result<proto::Scorecard, Error> {
        caller.require_any(&WRITERS)?;
        let org = &caller.org;
        let id = Collection::Scorecards.parse_required(&req.name, "name")?;
        let current = self.state.store.get_scorecard(org, id, 0).await?;
        let current = current.ok_or_else(|| Error::NotFound(req.name.clone()))?;
        if !writes_for_anyone(&caller) && current.interviewer != caller.user {
            return Err(Error::PermissionDenied("interviewers can amend only their own scorecards".into()));
        }
        let interview = self.state.store.get_interview(org, &current.interview_id).await?;
        let interview = interview.ok_or_else(|| Error::Internal(format!("scorecard {id} has no interview")))?;

        let mut v = Violations::new();
        validate::text(&mut v, "reason", &req.reason, true, limits::REASON);
        if req.revision < 0 {
            v.add("revision", "must not be negative");
        }
        let (content, warnings, rubric) =
            self.checked_content(org, &interview, req.ratings, req.recommendation, req.summary, &mut v).await?;
        v.into_result()?;
        self.ensure_not_erased(org, &current.candidate_id).await?;

        let amended = self
            .state
            .store
            .amend_scorecard(
                org,
                &Amendment {
                    id,
                    expected_revision: i64::from(req.revision),
                    content: &content,
                    reason: &req.reason,
                    author: &caller.user,
                    now: now_micros(),
                },
            )
            .await?;
        tracing::info!(scorecard = %amended.id, revision = amended.revision, "scorecard amended");
        self.state.calibrator.committed(org, &amended, &rubric).await?;
        Ok(convert::scorecard(&amended, warnings))
    }
}

#[tonic::async_trait]
impl ScorecardService for ScorecardApi {
    rpc!(submit_scorecard, submit, proto::SubmitScorecardRequest, proto::Scorecard);
    rpc!(get_scorecard, get, proto::GetScorecardRequest, proto::Scorecard);
    rpc!(list_scorecards, list, proto::ListScorecardsRequest, proto::ListScorecardsResponse);
    rpc!(amend_scorecard, amend, proto::AmendScorecardRequest, proto::Scorecard);
    rpc!(import_scorecards, import, tonic::Streaming<proto::ImportScorecardsRequest>, proto::ImportScorecardsResponse);
}

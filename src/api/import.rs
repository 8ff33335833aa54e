//! `ScorecardService.ImportScorecards`: back-filling an ATS's history by
//! external id. Items are read from the client stream into batches of up to
//! [`BATCH_ITEMS`]; each batch is resolved against what is already stored (one
//! query per kind), validated item by item exactly as the single-item calls
//! validate, and written in one transaction. A bad item gets its own FAILED
//! result and does not stop the others.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::State;
use super::convert::{decision_fields, ratings_from_proto, recommendation_from_proto};
use crate::auth::Caller;
use crate::calibrator::ImportStream;
use crate::domain::names::Collection;
use crate::domain::validate::{self, limits};
use crate::domain::{Candidate, Decision, Interview, Job, Role, Rubric, ScorecardContent, new_id, now_micros};
use crate::error::{Error, Violations};
use crate::proto::{self, import_item::Item, import_result::Outcome};
use crate::store::{ImportBatch, ImportedScorecard, SealedSelfIdentification};

/// Items written per transaction.
const BATCH_ITEMS: usize = 2_000;
/// Items one stream may carry; the response stays a few MB.
pub const MAX_ITEMS_PER_STREAM: usize = 50_000;
/// Items one message may carry.
const MAX_ITEMS_PER_MESSAGE: usize = 1_000;

const IMPORTERS: [Role; 2] = [Role::Admin, Role::Integration];

/// A stored or newly imported interview, as later items need it.
#[derive(Clone)]
struct KnownInterview {
    interview: Interview,
    scorecard: Option<String>,
    candidate_erased: bool,
}

/// What the stream has learnt so far, by external id.
struct Importer<'a> {
    state: &'a State,
    org: String,
    author: String,
    jobs: HashMap<String, (String, Arc<Rubric>)>,
    candidates: HashMap<String, (String, bool)>,
    interviews: HashMap<String, KnownInterview>,
    /// Decision external id → decision id.
    decisions: HashMap<String, String>,
    /// Rubric revisions by (rubric id, revision); revision 0 = latest.
    rubrics: HashMap<(String, i64), Option<Arc<Rubric>>>,
    /// Job id → its rubric, for stored interviews' jobs.
    job_rubrics: HashMap<String, Option<Arc<Rubric>>>,
    response: proto::ImportScorecardsResponse,
    /// Told of every committed batch's jobs; loads the organisation afresh
    /// once the stream ends, however it ends.
    open: ImportStream,
}

enum ItemResult {
    Created(String),
    Unchanged(String),
    Failed(Violations),
}

fn failed(field: &str, description: impl Into<String>) -> ItemResult {
    let mut v = Violations::new();
    v.add(field, description);
    ItemResult::Failed(v)
}

impl<'a> Importer<'a> {
    async fn rubric(&mut self, id: &str, revision: i64) -> Result<Option<Arc<Rubric>>, Error> {
        let key = (id.to_string(), revision);
        if let Some(found) = self.rubrics.get(&key) {
            return Ok(found.clone());
        }
        let found = self.state.store.get_rubric(&self.org, id, revision).await?;
        self.rubrics.insert(key, found.clone());
        Ok(found)
    }

    async fn job_rubric(&mut self, job_id: &str) -> Result<Option<Arc<Rubric>>, Error> {
        if let Some(found) = self.job_rubrics.get(job_id) {
            return Ok(found.clone());
        }
        let found = match self.state.store.get_job(&self.org, job_id).await? {
            Some(job) => self.rubric(&job.rubric_id, job.rubric_revision).await?,
            None => None,
        };
        self.job_rubrics.insert(job_id.to_string(), found.clone());
        Ok(found)
    }

    /// Loads what the batch refers to and the caches do not hold yet.
    async fn prefetch(&mut self, items: &[proto::ImportItem]) -> Result<(), Error> {
        let (mut jobs, mut candidates, mut interviews, mut decisions) =
            (HashSet::new(), HashSet::new(), HashSet::new(), HashSet::new());
        for item in items {
            match &item.item {
                Some(Item::Job(j)) => jobs.insert(j.external_id.clone()),
                Some(Item::Candidate(c)) => candidates.insert(c.external_id.clone()),
                Some(Item::Interview(i)) => {
                    jobs.insert(i.job_external_id.clone());
                    candidates.insert(i.candidate_external_id.clone());
                    interviews.insert(i.external_id.clone())
                }
                Some(Item::Scorecard(s)) => interviews.insert(s.interview_external_id.clone()),
                Some(Item::SelfIdentification(s)) => candidates.insert(s.candidate_external_id.clone()),
                Some(Item::Decision(d)) => {
                    jobs.insert(d.job_external_id.clone());
                    decisions.insert(d.external_id.clone());
                    candidates.insert(d.candidate_external_id.clone())
                }
                None => false,
            };
        }
        let missing = |set: HashSet<String>, known: &dyn Fn(&str) -> bool| -> Vec<String> {
            set.into_iter().filter(|e| !e.is_empty() && !known(e)).collect()
        };
        let jobs = missing(jobs, &|e| self.jobs.contains_key(e));
        let candidates = missing(candidates, &|e| self.candidates.contains_key(e));
        let interviews = missing(interviews, &|e| self.interviews.contains_key(e));
        let decisions = missing(decisions, &|e| self.decisions.contains_key(e));
        let store = self.state.store.clone();
        for j in store.jobs_by_external_id(&self.org, &jobs).await? {
            if let Some(rubric) = self.rubric(&j.rubric_id, j.rubric_revision).await? {
                self.job_rubrics.insert(j.id.clone(), Some(rubric.clone()));
                self.jobs.insert(j.external_id, (j.id, rubric));
            }
        }
        for c in store.candidates_by_external_id(&self.org, &candidates).await? {
            self.candidates.insert(c.external_id, (c.id, c.erased_at.is_some()));
        }
        for i in store.interviews_by_external_id(&self.org, &interviews).await? {
            let focus = serde_json::from_str(&i.focus_competencies)
                .map_err(|e| Error::Internal(format!("stored interview focus cannot be read: {e}")))?;
            let interview = Interview {
                id: i.id,
                job_id: i.job_id,
                candidate_id: i.candidate_id,
                interviewer: i.interviewer,
                focus_competencies: focus,
                scheduled_at: 0,
                scorecard_id: i.scorecard_id.clone(),
                external_id: i.external_id.clone(),
                created_at: 0,
                updated_at: 0,
            };
            let known =
                KnownInterview { interview, scorecard: i.scorecard_id, candidate_erased: i.erased_at.is_some() };
            self.interviews.insert(i.external_id, known);
        }
        for (external_id, id) in store.decisions_by_external_id(&self.org, &decisions).await? {
            self.decisions.insert(external_id, id);
        }
        Ok(())
    }

    fn self_identification(
        &mut self,
        s: proto::ImportSelfIdentification,
        batch: &mut ImportBatch,
    ) -> Result<ItemResult, Error> {
        let mut v = Violations::new();
        let field = "self_identification.candidate_external_id";
        validate::text(&mut v, field, &s.candidate_external_id, true, limits::EXTERNAL_ID);
        let sex = proto::Sex::try_from(s.sex).ok();
        if sex.is_none() {
            v.add("self_identification.sex", "is not a Sex value");
        }
        let race = proto::RaceEthnicity::try_from(s.race_ethnicity).ok();
        if race.is_none() {
            v.add("self_identification.race_ethnicity", "is not a RaceEthnicity value");
        }
        let Some(keys) = self.state.self_id_keys.clone() else {
            v.add("self_identification", super::compliance::NO_KEY);
            return Ok(ItemResult::Failed(v));
        };
        if !v.is_empty() {
            return Ok(ItemResult::Failed(v));
        }
        let Some((candidate_id, erased)) = self.candidates.get(&s.candidate_external_id).cloned() else {
            return Ok(failed(field, format!("no candidate has external id `{}`", s.candidate_external_id)));
        };
        if erased {
            return Ok(failed(field, crate::store::ERASED_CANDIDATE));
        }
        let (sex, race) = (sex.unwrap_or_default(), race.unwrap_or_default());
        let sealed = super::compliance::seal_self_identification(&keys, &self.org, &candidate_id, sex, race);
        batch.self_identifications.push(SealedSelfIdentification {
            candidate_id: candidate_id.clone(),
            key_id: keys.current_id().to_string(),
            sealed,
        });
        // Never the categories: the result names only the candidate.
        Ok(ItemResult::Created(Collection::Candidates.name(&candidate_id)))
    }

    fn decision(&mut self, d: proto::ImportDecision, batch: &mut ImportBatch, now: i64) -> ItemResult {
        let mut v = Violations::new();
        validate::text(&mut v, "decision.external_id", &d.external_id, true, limits::EXTERNAL_ID);
        validate::text(&mut v, "decision.job_external_id", &d.job_external_id, true, limits::EXTERNAL_ID);
        validate::text(&mut v, "decision.candidate_external_id", &d.candidate_external_id, true, limits::EXTERNAL_ID);
        let (outcome, decided_at) =
            decision_fields(&mut v, "decision.", d.outcome, &d.reason, "", d.decide_time.as_ref(), now);
        if !v.is_empty() {
            return ItemResult::Failed(v);
        }
        if let Some(id) = self.decisions.get(&d.external_id) {
            return ItemResult::Unchanged(Collection::Decisions.name(id));
        }
        let Some((job_id, _)) = self.jobs.get(&d.job_external_id).cloned() else {
            return failed("decision.job_external_id", format!("no job has external id `{}`", d.job_external_id));
        };
        let Some((candidate_id, erased)) = self.candidates.get(&d.candidate_external_id).cloned() else {
            return failed(
                "decision.candidate_external_id",
                format!("no candidate has external id `{}`", d.candidate_external_id),
            );
        };
        if erased {
            return failed("decision.candidate_external_id", crate::store::ERASED_CANDIDATE);
        }
        let decision = Decision {
            id: new_id(),
            job_id,
            candidate_id,
            outcome,
            reason: d.reason,
            decided_by: self.author.clone(),
            decided_at,
            external_id: d.external_id.clone(),
            created_at: now,
        };
        let name = Collection::Decisions.name(&decision.id);
        self.decisions.insert(d.external_id, decision.id.clone());
        batch.decisions.push(decision);
        ItemResult::Created(name)
    }

    async fn job(&mut self, j: proto::ImportJob, batch: &mut ImportBatch, now: i64) -> Result<ItemResult, Error> {
        let mut v = Violations::new();
        validate::text(&mut v, "job.external_id", &j.external_id, true, limits::EXTERNAL_ID);
        validate::text(&mut v, "job.title", &j.title, true, limits::TITLE);
        let rubric_id = Collection::Rubrics.parse_field(&j.rubric, "job.rubric", &mut v);
        if j.rubric_revision < 0 {
            v.add("job.rubric_revision", "must not be negative");
        }
        if !v.is_empty() {
            return Ok(ItemResult::Failed(v));
        }
        if let Some((id, _)) = self.jobs.get(&j.external_id) {
            return Ok(ItemResult::Unchanged(Collection::Jobs.name(id)));
        }
        let Some(rubric) = self.rubric(rubric_id.unwrap_or_default(), i64::from(j.rubric_revision)).await? else {
            return Ok(failed("job.rubric", format!("{} (revision {}) does not exist", j.rubric, j.rubric_revision)));
        };
        let job = Job {
            id: new_id(),
            title: j.title,
            external_id: j.external_id.clone(),
            rubric_id: rubric.id.clone(),
            rubric_revision: rubric.revision,
            created_at: now,
            updated_at: now,
            // Set with UpdateJob.
            hiring_bar: None,
        };
        let name = Collection::Jobs.name(&job.id);
        self.job_rubrics.insert(job.id.clone(), Some(rubric.clone()));
        self.jobs.insert(j.external_id, (job.id.clone(), rubric));
        batch.jobs.push(job);
        Ok(ItemResult::Created(name))
    }

    fn candidate(&mut self, c: proto::ImportCandidate, batch: &mut ImportBatch, now: i64) -> ItemResult {
        let mut v = Violations::new();
        validate::text(&mut v, "candidate.external_id", &c.external_id, true, limits::EXTERNAL_ID);
        validate::text(&mut v, "candidate.display_name", &c.display_name, true, limits::TITLE);
        validate::email(&mut v, "candidate.email", &c.email);
        if c.external_id.starts_with("erased:") {
            v.add("candidate.external_id", "must not start with `erased:` (reserved for erased candidates)");
        }
        if !v.is_empty() {
            return ItemResult::Failed(v);
        }
        if let Some((id, _)) = self.candidates.get(&c.external_id) {
            return ItemResult::Unchanged(Collection::Candidates.name(id));
        }
        let candidate = Candidate {
            id: new_id(),
            external_id: c.external_id.clone(),
            display_name: c.display_name,
            email: c.email,
            erased_at: None,
            created_at: now,
            updated_at: now,
        };
        let name = Collection::Candidates.name(&candidate.id);
        self.candidates.insert(c.external_id, (candidate.id.clone(), false));
        batch.candidates.push(candidate);
        ItemResult::Created(name)
    }

    fn interview(&mut self, i: proto::ImportInterview, batch: &mut ImportBatch, now: i64) -> ItemResult {
        let mut v = Violations::new();
        validate::text(&mut v, "interview.external_id", &i.external_id, true, limits::EXTERNAL_ID);
        validate::text(&mut v, "interview.job_external_id", &i.job_external_id, true, limits::EXTERNAL_ID);
        validate::text(&mut v, "interview.candidate_external_id", &i.candidate_external_id, true, limits::EXTERNAL_ID);
        validate::user_id(&mut v, "interview.interviewer", &i.interviewer);
        let scheduled_at = super::hiring::scheduled_time(&mut v, i.scheduled_time.as_ref());
        if i.focus_competencies.is_empty() || i.focus_competencies.len() > limits::FOCUS_COMPETENCIES {
            v.add("interview.focus_competencies", format!("must name 1..{} competencies", limits::FOCUS_COMPETENCIES));
        }
        if !v.is_empty() {
            return ItemResult::Failed(v);
        }
        if let Some(known) = self.interviews.get(&i.external_id) {
            return ItemResult::Unchanged(Collection::Interviews.name(&known.interview.id));
        }
        let Some((job_id, rubric)) = self.jobs.get(&i.job_external_id).cloned() else {
            return failed("interview.job_external_id", format!("no job has external id `{}`", i.job_external_id));
        };
        let Some((candidate_id, erased)) = self.candidates.get(&i.candidate_external_id).cloned() else {
            return failed(
                "interview.candidate_external_id",
                format!("no candidate has external id `{}`", i.candidate_external_id),
            );
        };
        if erased {
            return failed("interview.candidate_external_id", crate::store::ERASED_CANDIDATE);
        }
        super::hiring::focus_in_rubric(&mut v, &rubric, &i.focus_competencies);
        if !v.is_empty() {
            return ItemResult::Failed(v);
        }
        let interview = Interview {
            id: new_id(),
            job_id,
            candidate_id,
            interviewer: i.interviewer,
            focus_competencies: i.focus_competencies,
            scheduled_at: scheduled_at.unwrap_or_default(),
            scorecard_id: None,
            external_id: i.external_id.clone(),
            created_at: now,
            updated_at: now,
        };
        let name = Collection::Interviews.name(&interview.id);
        let known = KnownInterview { interview: interview.clone(), scorecard: None, candidate_erased: false };
        self.interviews.insert(i.external_id, known);
        batch.interviews.push(interview);
        ItemResult::Created(name)
    }

    async fn scorecard(
        &mut self,
        s: proto::ImportScorecard,
        batch: &mut ImportBatch,
        now: i64,
    ) -> Result<ItemResult, Error> {
        let mut v = Violations::new();
        validate::text(&mut v, "scorecard.interview_external_id", &s.interview_external_id, true, limits::EXTERNAL_ID);
        let submitted_at = super::convert::past_time(&mut v, "scorecard.submit_time", s.submit_time.as_ref(), now);
        if !v.is_empty() {
            return Ok(ItemResult::Failed(v));
        }
        let Some(known) = self.interviews.get(&s.interview_external_id).cloned() else {
            return Ok(failed(
                "scorecard.interview_external_id",
                format!("no interview has external id `{}`", s.interview_external_id),
            ));
        };
        if let Some(existing) = &known.scorecard {
            return Ok(ItemResult::Unchanged(Collection::Scorecards.name(existing)));
        }
        let Some(rubric) = self.job_rubric(&known.interview.job_id).await? else {
            return Err(Error::Internal(format!("interview {} has no job rubric", known.interview.id)));
        };
        if known.candidate_erased {
            return Ok(failed("scorecard.interview_external_id", crate::store::ERASED_CANDIDATE));
        }
        let recommendation = recommendation_from_proto(s.recommendation);
        let mut inner = Violations::new();
        if recommendation.is_none() {
            inner.add("recommendation", "is required: RECOMMENDATION_STRONG_NO, _NO, _YES or _STRONG_YES");
        }
        let content = ScorecardContent {
            ratings: ratings_from_proto(s.ratings),
            recommendation: recommendation.unwrap_or(crate::domain::Recommendation::No),
            summary: s.summary,
        };
        validate::scorecard(&content, rubric.content.scale, &known.interview.focus_competencies, &mut inner);
        if !inner.is_empty() {
            return Ok(ItemResult::Failed(inner.prefixed("scorecard.")));
        }
        let id = new_id();
        let name = Collection::Scorecards.name(&id);
        if let Some(k) = self.interviews.get_mut(&s.interview_external_id) {
            k.scorecard = Some(id.clone());
        }
        batch.scorecards.push(ImportedScorecard { id, interview: known.interview, content, submitted_at });
        Ok(ItemResult::Created(name))
    }

    async fn run_batch(&mut self, items: Vec<proto::ImportItem>) -> Result<(), Error> {
        self.prefetch(&items).await?;
        let now = now_micros();
        let mut batch = ImportBatch::default();
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let result = match item.item {
                Some(Item::Job(j)) => self.job(j, &mut batch, now).await?,
                Some(Item::Candidate(c)) => self.candidate(c, &mut batch, now),
                Some(Item::Interview(i)) => self.interview(i, &mut batch, now),
                Some(Item::Scorecard(s)) => self.scorecard(s, &mut batch, now).await?,
                Some(Item::SelfIdentification(s)) => self.self_identification(s, &mut batch)?,
                Some(Item::Decision(d)) => self.decision(d, &mut batch, now),
                None => failed(
                    "item",
                    "is required: one of job, candidate, interview, scorecard, self_identification, decision",
                ),
            };
            results.push(result);
        }
        crate::pauses::point("import.before_write", &self.org).await;
        self.state.store.write_import(&self.org, &batch, &self.author, now).await?;
        self.open.touched(batch.scorecards.iter().map(|s| s.interview.job_id.clone()));
        for result in results {
            let index = self.response.received;
            self.response.received += 1;
            let (outcome, resource, violations) = match result {
                ItemResult::Created(name) => {
                    self.response.created += 1;
                    (Outcome::Created, name, Vec::new())
                }
                ItemResult::Unchanged(name) => {
                    self.response.unchanged += 1;
                    (Outcome::Unchanged, name, Vec::new())
                }
                ItemResult::Failed(v) => {
                    self.response.failed += 1;
                    let violations = v
                        .into_vec()
                        .into_iter()
                        .map(|f| proto::ImportViolation { field: f.field, description: f.description })
                        .collect();
                    (Outcome::Failed, String::new(), violations)
                }
            };
            self.response.results.push(proto::ImportResult { index, outcome: outcome as i32, resource, violations });
        }
        Ok(())
    }
}

/// Runs one import stream.
pub async fn import(
    state: &State,
    caller: Caller,
    mut stream: tonic::Streaming<proto::ImportScorecardsRequest>,
) -> Result<proto::ImportScorecardsResponse, Error> {
    caller.require_any(&IMPORTERS)?;
    let mut importer = Importer {
        state,
        org: caller.org.clone(),
        author: caller.user.clone(),
        jobs: HashMap::new(),
        candidates: HashMap::new(),
        interviews: HashMap::new(),
        decisions: HashMap::new(),
        rubrics: HashMap::new(),
        job_rubrics: HashMap::new(),
        response: proto::ImportScorecardsResponse::default(),
        open: state.calibrator.import_stream(&caller.org),
    };
    let mut pending: Vec<proto::ImportItem> = Vec::new();
    let mut taken = 0usize;
    let outcome: Result<(), Error> = async {
        loop {
            let message = stream
                .message()
                .await
                .map_err(|s| Error::invalid("items", format!("the stream broke off: {}", s.message())))?;
            let Some(message) = message else { break };
            if message.items.is_empty() || message.items.len() > MAX_ITEMS_PER_MESSAGE {
                // Earlier batches are committed; say so in the error.
                return Err(Error::invalid(
                    "items",
                    format!(
                        "each message must carry 1..{MAX_ITEMS_PER_MESSAGE} items (after {} items were taken)",
                        taken + pending.len()
                    ),
                ));
            }
            if taken + pending.len() + message.items.len() > MAX_ITEMS_PER_STREAM {
                importer.response.truncated = true;
                break;
            }
            pending.extend(message.items);
            if pending.len() >= BATCH_ITEMS {
                taken += pending.len();
                importer.run_batch(std::mem::take(&mut pending)).await?;
            }
        }
        if !pending.is_empty() {
            importer.run_batch(std::mem::take(&mut pending)).await?;
        }
        Ok(())
    }
    .await;
    let r = &importer.response;
    tracing::info!(received = r.received, created = r.created, unchanged = r.unchanged, failed = r.failed, "import");
    // Ending the stream: a calibration read after this answer loads the
    // organisation afresh first, so it reflects the import; the next stream
    // of a back-fill does not wait for a fit.
    let Importer { response, open, .. } = importer;
    drop(open);
    outcome?;
    Ok(response)
}

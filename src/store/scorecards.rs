//! Scorecards and their revisions. A scorecard row points at its current
//! revision; every revision (recommendation, summary, reason, author) and its
//! ratings are kept for ever, apart from erasure of free text.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::FromRow;

use super::candidates::{erased_candidate, lock_unerased_candidate, lock_unerased_candidates};
use super::events::{NewEvent, append_events, scorecard_event};
use super::sql::{Columns, Conn, Copied, CopyRows, ROWS_PER_STATEMENT, Statement, WritePool};
use super::{Backend, Page, Store, corrupt, page_limit, split_page, with_pools};
use crate::calibration::raters::evidence_is_thin;
use crate::domain::{CandidateId, Interview, Micros, Rating, Recommendation, Scorecard, ScorecardContent, UserId};
use crate::error::Error;

/// Which scorecards a list returns ('' = any).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScorecardFilter<'a> {
    pub job: &'a str,
    pub candidate: &'a str,
    pub interviewer: &'a str,
    /// Blind review: when set, only scorecards this interviewer wrote, or about
    /// candidates they have submitted a scorecard for themselves.
    pub blind_viewer: &'a str,
}

/// What `submit_scorecard` did.
#[derive(Debug)]
pub enum SubmitOutcome {
    /// A new scorecard, revision 1.
    Created(Scorecard),
    /// A retry of an earlier submission with the same request id: the scorecard
    /// it created, at revision 1, as first acknowledged.
    Replayed(Scorecard),
}

/// A first submission.
pub struct NewScorecard<'a> {
    pub id: &'a str,
    pub interview: &'a Interview,
    pub content: &'a ScorecardContent,
    pub author: &'a str,
    pub request_id: &'a str,
    pub request_hash: &'a str,
    pub now: Micros,
}

/// Also read from a JSON array of the same fields in the same order
/// (`Store::list_scorecards`).
#[derive(FromRow, serde::Deserialize)]
struct ScorecardRow {
    id: String,
    interview_id: String,
    job_id: String,
    candidate_id: String,
    interviewer: String,
    revision: i64,
    recommendation: i64,
    summary: String,
    reason: String,
    author: String,
    submitted_at: i64,
    updated_at: i64,
}

#[derive(FromRow)]
struct RatingRow {
    competency: String,
    score: i64,
    evidence: String,
}

impl ScorecardRow {
    fn into_scorecard(self, ratings: Vec<Rating>) -> Result<Scorecard, Error> {
        let recommendation =
            Recommendation::from_code(self.recommendation).ok_or_else(|| corrupt("scorecard", "recommendation"))?;
        Ok(Scorecard {
            id: self.id,
            interview_id: self.interview_id,
            job_id: self.job_id,
            candidate_id: self.candidate_id,
            interviewer: self.interviewer,
            revision: self.revision,
            content: ScorecardContent { ratings, recommendation, summary: self.summary },
            amend_reason: self.reason,
            author: self.author,
            submitted_at: self.submitted_at,
            updated_at: self.updated_at,
        })
    }
}

fn rating(competency: String, score: i64, evidence: String) -> Result<Rating, Error> {
    Ok(Rating { competency, score: i32::try_from(score).map_err(|e| corrupt("rating", e))?, evidence })
}

impl RatingRow {
    fn into_rating(self) -> Result<Rating, Error> {
        rating(self.competency, self.score, self.evidence)
    }
}

/// A scorecard revision joined to its scorecard; the caller adds the join
/// condition on `v.revision`.
macro_rules! select_scorecard {
    () => {
        "select s.id, s.interview_id, s.job_id, s.candidate_id, s.interviewer, v.revision, v.recommendation,
                v.summary, v.reason, v.author, s.submitted_at, v.created_at as updated_at
         from scorecards s
         join scorecard_revisions v on v.org_id = s.org_id and v.scorecard_id = s.id "
    };
}

/// Appends a scorecard list's `where` on `s` to the query builder `$q`: only
/// the conditions in use, so that each combination is its own statement with
/// a plan that walks the right index in id order. (One statement with
/// `($3 = '' or s.job_id = $3)` for every filter gets a generic plan on
/// PostgreSQL that can use no filter's index and reads the whole
/// organisation's scorecards for every page.)
macro_rules! push_scorecard_filter {
    ($q:expr, $org:expr, $filter:expr, $page:expr) => {{
        let (q, filter, page): (_, &ScorecardFilter<'_>, &Page<'_>) = (&mut $q, &$filter, &$page);
        q.push(" where s.org_id = ").push_bind($org).push(" and s.id > ").push_bind(page.after);
        if page.updated_after != Micros::MIN {
            q.push(" and s.updated_at > ").push_bind(page.updated_after);
        }
        if !filter.job.is_empty() {
            q.push(" and s.job_id = ").push_bind(filter.job);
        }
        if !filter.candidate.is_empty() {
            q.push(" and s.candidate_id = ").push_bind(filter.candidate);
        }
        if !filter.interviewer.is_empty() {
            q.push(" and s.interviewer = ").push_bind(filter.interviewer);
        }
        if !filter.blind_viewer.is_empty() {
            q.push(" and (s.interviewer = ").push_bind(filter.blind_viewer).push(
                " or exists (select 1 from scorecards own
                             where own.org_id = s.org_id and own.candidate_id = s.candidate_id
                               and own.interviewer = ",
            );
            q.push_bind(filter.blind_viewer).push("))");
        }
    }};
}

/// A page of scorecards read as one row: the page's scorecards with their
/// ratings gathered as JSON by the database. SQLite's driver hands every row
/// from its own thread to the reader's and copies each of its values; a row
/// per rating (about 250 for a page of 50) cost more than the query, and on
/// PostgreSQL our share of a page's CPU fell by a third (docs/performance.md).
/// One statement also reads headers and ratings in one snapshot, so an
/// amendment cannot fall between them.
const GATHERED_SCORECARDS_SQLITE: &str =
    "select json_group_array(json_array(json_array(id, interview_id, job_id, candidate_id, interviewer, revision,
                                                   recommendation, summary, reason, author, submitted_at,
                                                   updated_at),
                                        json(ratings)))
     from (select s.id, s.interview_id, s.job_id, s.candidate_id, s.interviewer, v.revision, v.recommendation,
                  v.summary, v.reason, v.author, s.submitted_at, v.created_at as updated_at,
                  (select json_group_array(json_array(r.position, r.competency, r.score, r.evidence))
                   from ratings r
                   where r.org_id = s.org_id and r.scorecard_id = s.id and r.revision = s.revision
                  ) as ratings
           from scorecards s
           join scorecard_revisions v on v.org_id = s.org_id and v.scorecard_id = s.id and v.revision = s.revision";
/// [`GATHERED_SCORECARDS_SQLITE`] in PostgreSQL's JSON functions.
const GATHERED_SCORECARDS_POSTGRES: &str =
    "select json_agg(json_build_array(json_build_array(id, interview_id, job_id, candidate_id, interviewer, revision,
                                                       recommendation, summary, reason, author, submitted_at,
                                                       updated_at),
                                      ratings))::text
     from (select s.id, s.interview_id, s.job_id, s.candidate_id, s.interviewer, v.revision, v.recommendation,
                  v.summary, v.reason, v.author, s.submitted_at, v.created_at as updated_at,
                  coalesce((select json_agg(json_build_array(r.position, r.competency, r.score, r.evidence))
                            from ratings r
                            where r.org_id = s.org_id and r.scorecard_id = s.id and r.revision = s.revision),
                           '[]'::json) as ratings
           from scorecards s
           join scorecard_revisions v on v.org_id = s.org_id and v.scorecard_id = s.id and v.revision = s.revision";

/// A scorecard row about to be written, at revision 1.
pub(super) struct ScorecardInsert<'a> {
    pub org: &'a str,
    pub id: &'a str,
    pub interview: &'a Interview,
    /// '' when the submission named none (imports).
    pub request_id: &'a str,
    pub request_hash: &'a str,
    pub submitted_at: Micros,
    pub updated_at: Micros,
}

/// The scorecards table's one writer (first submissions and imports): inserts
/// `rows` at revision 1, skipping any whose interview or request id already
/// has a scorecard (also against an earlier row of the same statement) and
/// any whose candidate was erased; returns the (organisation, id) of those
/// inserted.
///
/// The erasure check is a fence, in the same statement so that it costs no
/// round trip: the candidates are read inside the write transaction, locked
/// `for share` on PostgreSQL (see [`lock_unerased_candidate`] for why that
/// holds against a concurrent erasure, and why SQLite needs no lock).
pub(super) async fn insert_scorecards(
    conn: &mut Conn<'_>,
    rows: &[ScorecardInsert<'_>],
) -> Result<HashSet<(String, String)>, Error> {
    let mut created = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        // A group commit holds several organisations' submissions.
        let mut insert =
            super::candidates::fenced_insert(conn, chunk.iter().map(|s| (s.org, s.interview.candidate_id.as_str())));
        insert.push(") insert into ").push(SCORECARD_COLUMNS).push(" select * from (");
        insert.values(chunk, |row, s| {
            scorecard_columns(row, s);
        });
        // VALUES columns are named column1, column2, … in both dialects.
        insert.push(
            ") as v where exists (select 1 from unerased u where u.org_id = v.column1 and u.id = v.column5)
             on conflict do nothing returning org_id, id",
        );
        created.extend(conn.fetch_all::<(String, String)>(&insert).await?);
    }
    Ok(created)
}

/// The same rows of one organisation written with PostgreSQL's `copy` (bulk
/// import): every one is written, or none if an interview already has a
/// scorecard or a candidate was erased meanwhile (`KeyTaken` either way:
/// the caller rolls back). The erasure fence comes first, as a locking read
/// of the candidates.
pub(super) async fn copy_scorecards(
    conn: &mut Conn<'_>,
    org: &str,
    rows: &[ScorecardInsert<'_>],
) -> Result<Copied, Error> {
    let mut candidates: Vec<&str> = rows.iter().map(|s| s.interview.candidate_id.as_str()).collect();
    candidates.sort_unstable();
    candidates.dedup();
    if lock_unerased_candidates(conn, org, &candidates).await? != candidates.len() {
        return Ok(Copied::KeyTaken);
    }
    let mut copy = CopyRows::default();
    for s in rows {
        scorecard_columns(&mut copy, s).end_row();
    }
    conn.copy_in(SCORECARD_COLUMNS, &copy).await
}

/// [`write_revisions`] with PostgreSQL's `copy` (bulk import).
pub(super) async fn copy_revisions(conn: &mut Conn<'_>, revisions: &[RevisionInsert<'_>]) -> Result<Copied, Error> {
    let mut rows = CopyRows::default();
    let mut ratings = CopyRows::default();
    for v in revisions {
        revision_columns(&mut rows, v).end_row();
        for (position, r) in v.content.ratings.iter().enumerate() {
            rating_columns(&mut ratings, v, position, r).end_row();
        }
    }
    let copied = conn.copy_in(REVISION_COLUMNS, &rows).await?;
    if let Copied::KeyTaken = copied {
        return Ok(copied);
    }
    conn.copy_in(RATING_COLUMNS, &ratings).await
}

/// A new scorecard's row (revision 1), in the order of [`SCORECARD_COLUMNS`].
fn scorecard_columns<'r, 'a, C: Columns<'a>>(row: &'r mut C, s: &'a ScorecardInsert<'_>) -> &'r mut C {
    row.text(s.org)
        .text(s.id)
        .text(&s.interview.id)
        .text(&s.interview.job_id)
        .text(&s.interview.candidate_id)
        .text(&s.interview.interviewer)
        .int(1)
        .text(s.request_id)
        .text(s.request_hash)
        .int(s.submitted_at)
        .int(s.updated_at)
}

const SCORECARD_COLUMNS: &str = "scorecards (org_id, id, interview_id, job_id, candidate_id, interviewer, revision,
    request_id, request_hash, submitted_at, updated_at)";

/// A revision's row, in the order of [`REVISION_COLUMNS`].
fn revision_columns<'r, 'a, C: Columns<'a>>(row: &'r mut C, v: &'a RevisionInsert<'_>) -> &'r mut C {
    row.text(v.org)
        .text(v.scorecard_id)
        .int(v.revision)
        .int(v.content.recommendation.code())
        .text(&v.content.summary)
        .text(v.reason)
        .text(v.author)
        .int(v.created_at)
}

const REVISION_COLUMNS: &str =
    "scorecard_revisions (org_id, scorecard_id, revision, recommendation, summary, reason, author, created_at)";

/// A rating's row (the `position`th of revision `v`), in the order of [`RATING_COLUMNS`].
fn rating_columns<'r, 'a, C: Columns<'a>>(
    row: &'r mut C,
    v: &'a RevisionInsert<'_>,
    position: usize,
    r: &'a Rating,
) -> &'r mut C {
    row.text(v.org)
        .text(v.scorecard_id)
        .int(v.revision)
        .int(position as i64)
        .text(&r.competency)
        .int(i64::from(r.score))
        .text(&r.evidence)
        .int(i64::from(evidence_is_thin(&r.evidence)))
}

const RATING_COLUMNS: &str = "ratings (org_id, scorecard_id, revision, position, competency, score, evidence, thin)";

/// One revision of a scorecard about to be written, with its ratings.
pub(super) struct RevisionInsert<'a> {
    pub org: &'a str,
    pub scorecard_id: &'a str,
    pub revision: i64,
    pub content: &'a ScorecardContent,
    /// Why it was amended; '' for revision 1.
    pub reason: &'a str,
    pub author: &'a str,
    pub created_at: Micros,
}

/// Writes each revision's row and its ratings: a revision never exists
/// without them.
pub(super) async fn write_revisions(conn: &mut Conn<'_>, revisions: &[RevisionInsert<'_>]) -> Result<(), Error> {
    insert_revisions(conn, revisions).await?;
    insert_ratings(conn, revisions).await
}

/// The scorecard_revisions table's one writer (submit, amend, import).
async fn insert_revisions(conn: &mut Conn<'_>, revisions: &[RevisionInsert<'_>]) -> Result<(), Error> {
    for chunk in revisions.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Statement::new("insert into ");
        insert.push(REVISION_COLUMNS);
        insert.values(chunk, |row, v| {
            revision_columns(row, v);
        });
        conn.execute(&insert).await?;
    }
    Ok(())
}

/// The ratings table's one writer: every revision's ratings, in their order.
async fn insert_ratings(conn: &mut Conn<'_>, revisions: &[RevisionInsert<'_>]) -> Result<(), Error> {
    let ratings: Vec<(&RevisionInsert<'_>, usize, &Rating)> = revisions
        .iter()
        .flat_map(|v| v.content.ratings.iter().enumerate().map(move |(position, r)| (v, position, r)))
        .collect();
    for chunk in ratings.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Statement::new("insert into ");
        insert.push(RATING_COLUMNS);
        insert.values(chunk, |row, (v, position, r)| {
            rating_columns(row, v, *position, r);
        });
        conn.execute(&insert).await?;
    }
    Ok(())
}

impl Store {
    /// A scorecard at `revision`, or at its current revision when `revision` is 0.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "get_scorecard"))]
    pub async fn get_scorecard(&self, org: &str, id: &str, revision: i64) -> Result<Option<Scorecard>, Error> {
        let found: Option<(ScorecardRow, Vec<RatingRow>)> = with_pools!(self, |read, _| {
            let header: Option<ScorecardRow> = sqlx::query_as(concat!(
                select_scorecard!(),
                "and v.revision = case when $3 = 0 then s.revision else $3 end
                 where s.org_id = $1 and s.id = $2"
            ))
            .bind(org)
            .bind(id)
            .bind(revision)
            .fetch_optional(read)
            .await?;
            match header {
                None => None,
                Some(header) => {
                    let ratings: Vec<RatingRow> = sqlx::query_as(
                        "select competency, score, evidence from ratings
                         where org_id = $1 and scorecard_id = $2 and revision = $3
                         order by position",
                    )
                    .bind(org)
                    .bind(id)
                    .bind(header.revision)
                    .fetch_all(read)
                    .await?;
                    Some((header, ratings))
                }
            }
        });
        match found {
            None => Ok(None),
            Some((header, ratings)) => {
                let ratings = ratings.into_iter().map(RatingRow::into_rating).collect::<Result<_, _>>()?;
                Ok(Some(header.into_scorecard(ratings)?))
            }
        }
    }

    /// Scorecards at their current revision, by id.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "list_scorecards"))]
    pub async fn list_scorecards(
        &self,
        org: &str,
        filter: ScorecardFilter<'_>,
        page: Page<'_>,
    ) -> Result<(Vec<Scorecard>, bool), Error> {
        let sql = if self.kind() == "postgres" { GATHERED_SCORECARDS_POSTGRES } else { GATHERED_SCORECARDS_SQLITE };
        let json: Option<String> = with_pools!(self, |read, _| {
            let mut query = sqlx::QueryBuilder::new(sql);
            push_scorecard_filter!(query, org, filter, page);
            query.push(" order by s.id").push(page_limit(page.limit)).push(") page");
            let (json,): (Option<String>,) = query.build_query_as().fetch_one(read).await?;
            json
        });
        type ListedRating = (i64, String, i64, String);
        let mut rows: Vec<(ScorecardRow, Vec<ListedRating>)> = match json {
            Some(json) => serde_json::from_str(&json).map_err(|e| corrupt("scorecards", e))?,
            None => Vec::new(),
        };
        // The aggregates' order is the subqueries' in practice, not by either database's promise.
        rows.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let (rows, more) = split_page(rows, page.limit);
        let mut scorecards = Vec::with_capacity(rows.len());
        for (header, mut ratings) in rows {
            ratings.sort_by_key(|r| r.0);
            let ratings = ratings
                .into_iter()
                .map(|(_, competency, score, evidence)| rating(competency, score, evidence))
                .collect::<Result<_, _>>()?;
            scorecards.push(header.into_scorecard(ratings)?);
        }
        Ok((scorecards, more))
    }

    /// Whether `interviewer` has submitted a scorecard about `candidate` (blind review).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "has_submitted_for_candidate"))]
    pub async fn has_submitted_for_candidate(
        &self,
        org: &str,
        UserId(interviewer): UserId<'_>,
        CandidateId(candidate): CandidateId<'_>,
    ) -> Result<bool, Error> {
        let found: Option<i64> = with_pools!(self, |read, _| {
            sqlx::query_scalar(
                "select cast(1 as bigint) from scorecards where org_id = $1 and interviewer = $2 and candidate_id = $3 limit 1",
            )
            .bind(org)
            .bind(interviewer)
            .bind(candidate)
            .fetch_optional(read)
            .await?
        });
        Ok(found.is_some())
    }

    /// Whether `interviewer` has an interview with `candidate`.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "interviews_candidate"))]
    pub async fn interviews_candidate(
        &self,
        org: &str,
        UserId(interviewer): UserId<'_>,
        CandidateId(candidate): CandidateId<'_>,
    ) -> Result<bool, Error> {
        let found: Option<i64> = with_pools!(self, |read, _| {
            sqlx::query_scalar(
                "select cast(1 as bigint) from interviews where org_id = $1 and interviewer = $2 and candidate_id = $3 limit 1",
            )
            .bind(org)
            .bind(interviewer)
            .bind(candidate)
            .fetch_optional(read)
            .await?
        });
        Ok(found.is_some())
    }

    async fn scorecard_by_request_id(&self, org: &str, request_id: &str) -> Result<Option<(String, String)>, Error> {
        Ok(with_pools!(self, |read, _| {
            // `request_id <> ''` names the partial unique index's condition: without
            // it SQLite cannot use that index and scans the organisation's scorecards.
            sqlx::query_as(
                "select id, request_hash from scorecards where org_id = $1 and request_id <> '' and request_id = $2",
            )
            .bind(org)
            .bind(request_id)
            .fetch_optional(read)
            .await?
        }))
    }

    /// The scorecard an earlier request with this id created, if any. Reusing an
    /// id for different content is refused.
    async fn replay(&self, org: &str, request_id: &str, request_hash: &str) -> Result<Option<Scorecard>, Error> {
        if request_id.is_empty() {
            return Ok(None);
        }
        match self.scorecard_by_request_id(org, request_id).await? {
            None => Ok(None),
            Some((_, hash)) if hash != request_hash => {
                Err(Error::invalid("request_id", "was already used for a different submission; use a new request_id"))
            }
            Some((id, _)) => self.get_scorecard(org, &id, 1).await,
        }
    }

    /// Stores a first submission (revision 1), durably, before it returns: it is
    /// written by the group committer inside a savepoint of a transaction shared
    /// with the submissions that arrived meanwhile, and returns once that
    /// transaction committed. Idempotent on `request_id`; `AlreadyExists` when
    /// the interview already has a scorecard. A retry is not looked up first:
    /// the unique indexes turn its insert into a no-op, and only then is the
    /// earlier scorecard read, so first submissions cost no extra read.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "submit_scorecard"))]
    pub async fn submit_scorecard(&self, org: &str, new: NewScorecard<'_>) -> Result<SubmitOutcome, Error> {
        let (reply, inserted) = tokio::sync::oneshot::channel();
        let queued = QueuedSubmission {
            org: org.to_string(),
            id: new.id.to_string(),
            interview: new.interview.clone(),
            content: new.content.clone(),
            author: new.author.to_string(),
            request_id: new.request_id.to_string(),
            request_hash: new.request_hash.to_string(),
            now: new.now,
            reply,
        };
        let stopped = || Error::Unavailable("the database writer has stopped".into());
        self.submissions.send(queued).await.map_err(|_| stopped())?;
        let inserted = inserted.await.map_err(|_| stopped())??;
        if inserted {
            self.events_committed();
            // Exactly what was written: no read-back.
            let i = new.interview;
            return Ok(SubmitOutcome::Created(Scorecard {
                id: new.id.to_string(),
                interview_id: i.id.clone(),
                job_id: i.job_id.clone(),
                candidate_id: i.candidate_id.clone(),
                interviewer: i.interviewer.clone(),
                revision: 1,
                content: new.content.clone(),
                amend_reason: String::new(),
                author: new.author.to_string(),
                submitted_at: new.now,
                updated_at: new.now,
            }));
        }
        // A retry (now or concurrently) with the same request id gets what it
        // first got, even after an erasure; otherwise a different submission
        // for the same interview, or one about an erased candidate.
        if let Some(prior) = self.replay(org, new.request_id, new.request_hash).await? {
            return Ok(SubmitOutcome::Replayed(prior));
        }
        // Which of the two only decides the error: nothing was written.
        if self.get_candidate(org, &new.interview.candidate_id).await?.is_some_and(|c| c.erased_at.is_some()) {
            return Err(erased_candidate());
        }
        Err(Error::AlreadyExists(format!(
            "interviews/{} already has a scorecard; use AmendScorecard to change it",
            new.interview.id
        )))
    }

    /// Writes a new revision. `expected_revision` 0 accepts any current revision;
    /// otherwise a mismatch is `Aborted`. `NotFound` if there is no such scorecard.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "amend_scorecard"))]
    pub async fn amend_scorecard(&self, org: &str, amendment: &Amendment<'_>) -> Result<Scorecard, Error> {
        let Amendment { id, expected_revision, content, reason, author, now } = *amendment;
        enum Outcome {
            /// `None`: no such scorecard, or not at the expected revision.
            Amended(Option<i64>),
            CandidateErased,
        }
        let outcome: Outcome = with_pools!(self, |_, write| {
            let mut tx = write.begin().await?;
            // The erasure fence on the scorecard's candidate (which never changes).
            let candidate: Option<String> =
                sqlx::query_scalar("select candidate_id from scorecards where org_id = $1 and id = $2")
                    .bind(org)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let fenced = match &candidate {
                Some(c) => lock_unerased_candidate(&mut Conn::from(&mut *tx), org, c).await?,
                None => true,
            };
            if !fenced {
                tx.rollback().await?;
                Outcome::CandidateErased
            } else {
                let amended: Option<(i64, String, String, String, String)> = sqlx::query_as(
                    "update scorecards set revision = revision + 1, updated_at = $3
                 where org_id = $1 and id = $2 and ($4 = 0 or revision = $4)
                 returning revision, interview_id, job_id, candidate_id, interviewer",
                )
                .bind(org)
                .bind(id)
                .bind(now)
                .bind(expected_revision)
                .fetch_optional(&mut *tx)
                .await?;
                match amended {
                    Some((revision, interview_id, job_id, candidate_id, interviewer)) => {
                        let revision_row = RevisionInsert {
                            org,
                            scorecard_id: id,
                            revision,
                            content,
                            reason,
                            author,
                            created_at: now,
                        };
                        write_revisions(&mut Conn::from(&mut *tx), std::slice::from_ref(&revision_row)).await?;
                        let keys = [interview_id.as_str(), &job_id, &candidate_id, &interviewer];
                        let events = [scorecard_event("scorecard.amended", id, keys, revision)];
                        append_events(&mut Conn::from(&mut *tx), org, &events, now).await?;
                        tx.commit().await?;
                        Outcome::Amended(Some(revision))
                    }
                    None => Outcome::Amended(None),
                }
            }
        });
        let revision = match outcome {
            Outcome::CandidateErased => return Err(erased_candidate()),
            Outcome::Amended(revision) => revision,
        };
        if revision.is_some() {
            self.events_committed();
        }
        match revision {
            Some(revision) => self
                .get_scorecard(org, id, revision)
                .await?
                .ok_or_else(|| Error::Internal("a committed amendment cannot be read back".into())),
            None if self.get_scorecard(org, id, 0).await?.is_some() => Err(Error::Aborted(format!(
                "the scorecard is no longer at revision {expected_revision}: read it again and retry"
            ))),
            None => Err(Error::NotFound(format!("scorecards/{id}"))),
        }
    }
}

/// A new revision of a scorecard, as its author sent it.
#[derive(Debug, Clone, Copy)]
pub struct Amendment<'a> {
    /// The scorecard's id.
    pub id: &'a str,
    /// 0 accepts any current revision; otherwise a mismatch is `Aborted`.
    pub expected_revision: i64,
    pub content: &'a ScorecardContent,
    pub reason: &'a str,
    pub author: &'a str,
    pub now: Micros,
}

/// Most first submissions committed together.
const GROUP_MAX: usize = 256;

/// A first submission waiting for the group committer, with where to say
/// whether it was inserted (false: a unique index turned it into a no-op).
pub(crate) struct QueuedSubmission {
    org: String,
    id: String,
    interview: Interview,
    content: ScorecardContent,
    author: String,
    request_id: String,
    request_hash: String,
    now: Micros,
    reply: tokio::sync::oneshot::Sender<Result<bool, Error>>,
}

/// Writes a whole batch of first submissions with a handful of multi-row
/// statements (scorecards with the erasure fence, revisions, ratings, then
/// each organisation's events); returns whether each was inserted (not: its
/// interview or request id already had a scorecard, or its candidate was
/// erased), in batch order. Statement count, not rows, is what a submission
/// costs here: every statement is a round trip to the database (a thread hop
/// for SQLite).
async fn insert_submissions(conn: &mut Conn<'_>, batch: &[QueuedSubmission]) -> Result<Vec<bool>, Error> {
    let rows: Vec<ScorecardInsert<'_>> = batch
        .iter()
        .map(|s| ScorecardInsert {
            org: &s.org,
            id: &s.id,
            interview: &s.interview,
            request_id: &s.request_id,
            request_hash: &s.request_hash,
            submitted_at: s.now,
            updated_at: s.now,
        })
        .collect();
    let created = insert_scorecards(conn, &rows).await?;
    let inserted: Vec<bool> = batch.iter().map(|s| created.contains(&(s.org.clone(), s.id.clone()))).collect();
    let written: Vec<&QueuedSubmission> = batch.iter().zip(&inserted).filter(|(_, i)| **i).map(|(s, _)| s).collect();
    if written.is_empty() {
        return Ok(inserted);
    }
    let revisions: Vec<RevisionInsert<'_>> = written
        .iter()
        .map(|s| RevisionInsert {
            org: &s.org,
            scorecard_id: &s.id,
            revision: 1,
            content: &s.content,
            reason: "",
            author: &s.author,
            created_at: s.now,
        })
        .collect();
    write_revisions(conn, &revisions).await?;
    // Each organisation's events in one append, in batch order.
    let mut orgs: Vec<&str> = written.iter().map(|s| s.org.as_str()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    for org in orgs {
        let mine: Vec<&&QueuedSubmission> = written.iter().filter(|s| s.org == org).collect();
        let events: Vec<NewEvent> = mine
            .iter()
            .map(|s| {
                let i = &s.interview;
                let keys = [i.id.as_str(), &i.job_id, &i.candidate_id, &i.interviewer];
                scorecard_event("scorecard.submitted", &s.id, keys, 1)
            })
            .collect();
        let now = mine.iter().map(|s| s.now).max().unwrap_or_default();
        append_events(conn, org, &events, now).await?;
    }
    Ok(inserted)
}

/// The group committer: takes every submission waiting (up to
/// [`GROUP_MAX`]), writes them together in one transaction, commits once —
/// one flush for the lot — and only then answers each. Ends when every sender
/// is gone.
///
/// It is supervised: if it dies (a panic in a driver or in our code), the
/// submissions of the batch in hand fail (none is acknowledged; one whose
/// commit went through is found again by its request id on retry) and a new
/// committer takes over the same queue, so later submissions are served.
async fn group_commit(pool: WritePool, queue: tokio::sync::mpsc::Receiver<QueuedSubmission>) {
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    loop {
        let worker = tokio::spawn(commit_batches(pool.clone(), queue.clone()));
        match worker.await {
            Ok(()) => return, // every sender is gone
            Err(e) if e.is_panic() => {
                crate::metrics::global().record_task_restart("group_commit");
                tracing::error!("the group committer panicked; restarting it");
            }
            Err(_) => return, // cancelled: the runtime is shutting down
        }
    }
}

async fn commit_batches(
    pool: WritePool,
    queue: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<QueuedSubmission>>>,
) {
    let mut queue = queue.lock().await;
    let mut batch: Vec<QueuedSubmission> = Vec::with_capacity(GROUP_MAX);
    while queue.recv_many(&mut batch, GROUP_MAX).await > 0 {
        if let Some(first) = batch.first() {
            crate::pauses::point("store.group_commit.batch", &first.org).await;
        }
        match write_batch(&pool, &batch).await {
            Ok(results) => {
                for (s, result) in batch.drain(..).zip(results) {
                    let _ = s.reply.send(result);
                }
            }
            Err(e) => {
                for s in batch.drain(..) {
                    let _ = s.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Writes one batch. If its statements fail, the transaction is rolled back
/// and each submission written again in its own savepoint of a new one, so
/// one bad submission fails alone; a failed commit fails every submission of
/// the batch (none was acknowledged, none was written).
async fn write_batch(pool: &WritePool, batch: &[QueuedSubmission]) -> Result<Vec<Result<bool, Error>>, Error> {
    let mut tx = pool.begin().await?;
    if let Ok(inserted) = insert_submissions(&mut tx.conn(), batch).await {
        tx.commit().await?;
        return Ok(inserted.into_iter().map(Ok).collect());
    }
    // Nothing of the batch stays: start again, one savepoint each.
    tx.rollback().await?;
    let mut tx = pool.begin().await?;
    let mut results = Vec::with_capacity(batch.len());
    for s in batch {
        let mut savepoint = tx.savepoint().await?;
        let one = insert_submissions(&mut savepoint.conn(), std::slice::from_ref(s))
            .await
            .map(|inserted| inserted.first().copied().unwrap_or(false));
        match one {
            Ok(_) => savepoint.commit().await?,
            Err(_) => savepoint.rollback().await?,
        }
        results.push(one);
    }
    tx.commit().await?;
    Ok(results)
}

/// Starts the group committer of first submissions on the backend's write
/// pool; it ends when every [`Store`] clone holding its queue is gone.
pub(super) fn start_group_commit(backend: &super::Backend) -> tokio::sync::mpsc::Sender<QueuedSubmission> {
    let (sender, queue) = tokio::sync::mpsc::channel(4 * GROUP_MAX);
    let pool = match backend {
        super::Backend::Sqlite { write, .. } => WritePool::Sqlite(write.clone()),
        super::Backend::Postgres { pool } => WritePool::Postgres(pool.clone()),
    };
    tokio::spawn(group_commit(pool, queue));
    sender
}

/// One scorecard at its current revision, with what calibration needs of it.
#[derive(Debug, Clone)]
pub struct CalibrationScorecard {
    pub scorecard_id: String,
    /// The scorecard's current revision.
    pub revision: i64,
    pub job_id: String,
    pub candidate_id: String,
    pub interviewer: String,
    pub recommendation: i64,
    pub submitted_at: i64,
    /// In the interviewer's order.
    pub ratings: Vec<CalibrationRating>,
}

/// A rating as the database gathers it: position, competency, score, its
/// stored thinness (1 or 0), and its evidence only where that is not stored
/// (ratings written before the `thin` column).
type GatheredRating = (i64, String, i64, Option<i64>, Option<String>);

/// The ratings in their positions' order, each with whether its evidence is thin.
fn in_order(mut gathered: Vec<GatheredRating>) -> Vec<CalibrationRating> {
    gathered.sort_by_key(|r| r.0);
    gathered
        .into_iter()
        .map(|(_, competency, score, thin, evidence)| {
            let thin = match thin {
                Some(stored) => stored != 0,
                None => evidence_is_thin(evidence.as_deref().unwrap_or("")),
            };
            (competency, score, thin)
        })
        .collect()
}

/// [`CalibrationScorecard`] as PostgreSQL returns it, its ratings as JSON.
#[derive(FromRow)]
struct CalibrationScorecardRow {
    scorecard_id: String,
    revision: i64,
    job_id: String,
    candidate_id: String,
    interviewer: String,
    recommendation: i64,
    submitted_at: i64,
    ratings: Option<String>,
}

impl CalibrationScorecardRow {
    fn read(self) -> Result<CalibrationScorecard, Error> {
        let gathered: Vec<GatheredRating> = match &self.ratings {
            Some(json) => serde_json::from_str(json).map_err(|e| corrupt("ratings of a scorecard", e))?,
            None => Vec::new(),
        };
        Ok(CalibrationScorecard {
            scorecard_id: self.scorecard_id,
            revision: self.revision,
            job_id: self.job_id,
            candidate_id: self.candidate_id,
            interviewer: self.interviewer,
            recommendation: self.recommendation,
            submitted_at: self.submitted_at,
            ratings: in_order(gathered),
        })
    }
}

/// Scorecards per query when SQLite reads an organisation for calibration.
const CALIBRATION_PAGE: usize = 2_000;

/// One rating as calibration reads it: competency, score, whether its
/// evidence is thin. The evidence itself is not read (it was 43 of every 64
/// bytes a load read).
pub type CalibrationRating = (String, i64, bool);

impl Store {
    /// Every scorecard of an organisation at its current revision, with its
    /// ratings, handed to `each` as they are read: a large organisation is
    /// never held in memory as rows. One row per scorecard, its ratings
    /// gathered by the database: the SQLite driver hands every row from its
    /// own thread to the caller's, and one row for each rating cost three
    /// times the hand-offs (a load of 300,000 ratings spent most of its four
    /// seconds there).
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "each_calibration_scorecard"))]
    pub async fn each_calibration_scorecard(
        &self,
        org: &str,
        mut each: impl FnMut(CalibrationScorecard),
    ) -> Result<(), Error> {
        use tokio_stream::StreamExt;
        macro_rules! select_calibration_scorecards {
            ($gather_ratings:literal) => {
                concat!(
                    "select s.id as scorecard_id, s.revision, s.job_id, s.candidate_id, s.interviewer,
                            v.recommendation, s.submitted_at, (select ",
                    $gather_ratings,
                    " from ratings r where r.org_id = s.org_id and r.scorecard_id = s.id and r.revision = s.revision
                     ) as ratings
                     from scorecards s
                     join scorecard_revisions v
                       on v.org_id = s.org_id and v.scorecard_id = s.id and v.revision = s.revision
                     where s.org_id = $1
                     order by s.id"
                )
            };
        }
        if self.kind() == "postgres" {
            let sql = select_calibration_scorecards!(
                "json_agg(json_build_array(r.position, r.competency, r.score, r.thin,
                                           case when r.thin is null then r.evidence end))::text"
            );
            with_pools!(self, |read, _| {
                let mut rows = sqlx::query_as::<_, CalibrationScorecardRow>(sql).bind(org).fetch(read);
                while let Some(row) = rows.next().await {
                    each(row?.read()?);
                }
            });
            return Ok(());
        }
        // SQLite: pages of scorecards, each page one row holding them all as
        // JSON. Its driver hands every row from its own thread to the
        // reader's, two thread switches a row: a row per scorecard spent
        // three times what the query itself took.
        let Backend::Sqlite { read, .. } = &*self.backend else { unreachable!("the backend is SQLite") };
        let mut after = String::new();
        loop {
            let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "select json_group_array(json_array(id, revision, job_id, candidate_id, interviewer, recommendation,
                                                    submitted_at, json(ratings)))
                 from (select s.id, s.revision, s.job_id, s.candidate_id, s.interviewer, v.recommendation,
                              s.submitted_at,
                              (select json_group_array(json_array(r.position, r.competency, r.score, r.thin,
                                                                  case when r.thin is null then r.evidence end))
                               from ratings r
                               where r.org_id = s.org_id and r.scorecard_id = s.id and r.revision = s.revision
                              ) as ratings
                       from scorecards s
                       join scorecard_revisions v
                         on v.org_id = s.org_id and v.scorecard_id = s.id and v.revision = s.revision
                       where s.org_id = ",
            );
            // The page size written in, not bound (see `page_limit`).
            query.push_bind(org).push(" and s.id > ").push_bind(&after);
            query.push(" order by s.id limit ").push(CALIBRATION_PAGE).push(")");
            let page: (Option<String>,) = query.build_query_as().fetch_one(read).await?;
            type PagedScorecard = (String, i64, String, String, String, i64, i64, Vec<GatheredRating>);
            let mut rows: Vec<PagedScorecard> = match page.0 {
                Some(json) => serde_json::from_str(&json).map_err(|e| corrupt("scorecards for calibration", e))?,
                None => Vec::new(),
            };
            // The aggregate's order is the subquery's in practice, not by
            // SQLite's promise.
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            let full = rows.len() == CALIBRATION_PAGE;
            for (scorecard_id, revision, job_id, candidate_id, interviewer, recommendation, submitted_at, ratings) in
                rows
            {
                after.clone_from(&scorecard_id);
                each(CalibrationScorecard {
                    scorecard_id,
                    revision,
                    job_id,
                    candidate_id,
                    interviewer,
                    recommendation,
                    submitted_at,
                    ratings: in_order(ratings),
                });
            }
            if !full {
                break;
            }
        }
        Ok(())
    }
}

impl Store {
    /// The organisations that have at least one scorecard.
    #[tracing::instrument(name = "db", target = "scorecard::spans", level = "info", skip_all, fields(db.system = self.kind(), db.operation = "organisations_with_scorecards"))]
    pub async fn organisations_with_scorecards(&self) -> Result<Vec<String>, Error> {
        Ok(with_pools!(self, |read, _| {
            sqlx::query_scalar("select distinct org_id from scorecards order by org_id").fetch_all(read).await?
        }))
    }
}

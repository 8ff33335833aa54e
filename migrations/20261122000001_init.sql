-- The hiring record: rubrics, jobs, candidates, interviews, scorecards.
-- Every table is keyed by (org_id, id): the tenant is part of every key, so no
-- query can reach another organisation's rows by id alone. Times are
-- microseconds since the Unix epoch (UTC). The same text serves SQLite and
-- PostgreSQL; constraint and index names are identical in both.

create table rubrics (
    org_id text not null,
    id text not null,
    -- number of the newest revision; every revision is a row of rubric_revisions
    latest_revision bigint not null,
    created_at bigint not null,
    updated_at bigint not null,
    constraint rubrics_pkey primary key (org_id, id)
);

create table rubric_revisions (
    org_id text not null,
    rubric_id text not null,
    revision bigint not null,
    -- the whole revision (title, scale, dimensions, competencies) as JSON;
    -- written once, never updated: jobs and scorecards depend on it
    content text not null,
    created_at bigint not null,
    constraint rubric_revisions_pkey primary key (org_id, rubric_id, revision),
    constraint rubric_revisions_rubric_fkey foreign key (org_id, rubric_id) references rubrics (org_id, id)
);

create table jobs (
    org_id text not null,
    id text not null,
    title text not null,
    -- the ATS's id; '' when the job was not created from an ATS
    external_id text not null,
    rubric_id text not null,
    -- the pinned rubric revision every interview of this job is scored against
    rubric_revision bigint not null,
    created_at bigint not null,
    updated_at bigint not null,
    constraint jobs_pkey primary key (org_id, id),
    constraint jobs_rubric_revision_fkey foreign key (org_id, rubric_id, rubric_revision)
        references rubric_revisions (org_id, rubric_id, revision)
);
create unique index jobs_external_id_key on jobs (org_id, external_id) where external_id <> '';

create table candidates (
    org_id text not null,
    id text not null,
    -- the ATS's id; replaced by 'erased:<id>' on erasure
    external_id text not null,
    display_name text not null,
    email text not null,
    -- set when personal data was erased (GDPR); null otherwise
    erased_at bigint,
    created_at bigint not null,
    updated_at bigint not null,
    constraint candidates_pkey primary key (org_id, id)
);
create unique index candidates_external_id_key on candidates (org_id, external_id);

create table interviews (
    org_id text not null,
    id text not null,
    job_id text not null,
    candidate_id text not null,
    -- the interviewer's user id (their tokens' sub)
    interviewer text not null,
    -- JSON array of the competency keys this interview must assess
    focus_competencies text not null,
    scheduled_at bigint not null,
    created_at bigint not null,
    updated_at bigint not null,
    constraint interviews_pkey primary key (org_id, id),
    constraint interviews_job_fkey foreign key (org_id, job_id) references jobs (org_id, id),
    constraint interviews_candidate_fkey foreign key (org_id, candidate_id) references candidates (org_id, id)
);
create index interviews_job_idx on interviews (org_id, job_id);
create index interviews_candidate_idx on interviews (org_id, candidate_id);
create index interviews_interviewer_idx on interviews (org_id, interviewer);
create index interviews_scheduled_idx on interviews (org_id, scheduled_at);

create table scorecards (
    org_id text not null,
    id text not null,
    interview_id text not null,
    -- copied from the interview so rankings and filters need no join
    job_id text not null,
    candidate_id text not null,
    interviewer text not null,
    -- number of the current revision; every revision is a row of scorecard_revisions
    revision bigint not null,
    -- the client's idempotency key; '' when none was given
    request_id text not null,
    -- SHA-256 of the submission, to tell a retry from a reuse of the key
    request_hash text not null,
    submitted_at bigint not null,
    updated_at bigint not null,
    constraint scorecards_pkey primary key (org_id, id),
    constraint scorecards_interview_fkey foreign key (org_id, interview_id) references interviews (org_id, id)
);
create unique index scorecards_interview_key on scorecards (org_id, interview_id);
create unique index scorecards_request_id_key on scorecards (org_id, request_id) where request_id <> '';
create index scorecards_job_idx on scorecards (org_id, job_id);
create index scorecards_candidate_idx on scorecards (org_id, candidate_id);
create index scorecards_interviewer_idx on scorecards (org_id, interviewer);

create table scorecard_revisions (
    org_id text not null,
    scorecard_id text not null,
    revision bigint not null,
    -- 1 strong no, 2 no, 3 yes, 4 strong yes
    recommendation bigint not null,
    summary text not null,
    -- why this revision was written; '' on revision 1
    reason text not null,
    -- user id of whoever wrote this revision
    author text not null,
    created_at bigint not null,
    constraint scorecard_revisions_pkey primary key (org_id, scorecard_id, revision),
    constraint scorecard_revisions_scorecard_fkey foreign key (org_id, scorecard_id) references scorecards (org_id, id),
    constraint scorecard_revisions_recommendation_check check (recommendation between 1 and 4)
);

create table ratings (
    org_id text not null,
    scorecard_id text not null,
    revision bigint not null,
    -- order the interviewer gave the ratings in
    position bigint not null,
    competency text not null,
    score bigint not null,
    -- what the candidate did or said; '' after erasure
    evidence text not null,
    constraint ratings_pkey primary key (org_id, scorecard_id, revision, competency),
    constraint ratings_revision_fkey foreign key (org_id, scorecard_id, revision)
        references scorecard_revisions (org_id, scorecard_id, revision),
    constraint ratings_score_check check (score between 0 and 10)
);

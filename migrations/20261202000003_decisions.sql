-- Hiring decisions about a candidate for a job: the selection events that an
-- adverse-impact report's selection rate counts. Every decision is kept; the
-- latest (by decided_at, then id) per (job, candidate) is the one that counts.
-- Never an input of calibration.
create table decisions (
    org_id text not null,
    id text not null,
    job_id text not null,
    candidate_id text not null,
    -- advanced | rejected | offered | hired | withdrawn
    outcome text not null,
    -- free text: personal data, blanked when the candidate is erased
    reason text not null,
    -- user id of the caller who recorded it
    decided_by text not null,
    -- when it was decided (the ATS's time on import), not when it was stored
    decided_at bigint not null,
    -- the ATS's id; '' when none was given
    external_id text not null,
    created_at bigint not null,
    constraint decisions_pkey primary key (org_id, id),
    constraint decisions_outcome_check check (outcome in ('advanced', 'rejected', 'offered', 'hired', 'withdrawn')),
    constraint decisions_job_fkey foreign key (org_id, job_id) references jobs (org_id, id),
    constraint decisions_candidate_fkey foreign key (org_id, candidate_id) references candidates (org_id, id)
);
create unique index decisions_external_id_key on decisions (org_id, external_id) where external_id <> '';
-- ListDecisions by job or candidate, and the latest per (job, candidate)
create index decisions_job_idx on decisions (org_id, job_id, id);
create index decisions_candidate_idx on decisions (org_id, candidate_id, id);

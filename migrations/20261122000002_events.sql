-- Integration plumbing: the event log (a transactional outbox: each event is
-- written in the transaction of the change it records), webhooks and their
-- deliveries, and the interview columns bulk import and overdue notices need.
-- The same text serves SQLite and PostgreSQL.

-- The last sequence number handed out per organisation. Taking the next one
-- updates this row, which PostgreSQL locks until the transaction ends: events
-- of one organisation therefore commit in sequence order, so a reader that
-- has seen sequence n never later finds a smaller one appear (no gaps).
create table event_sequences (
    org_id text not null,
    last_sequence bigint not null,
    constraint event_sequences_pkey primary key (org_id)
);

create table events (
    org_id text not null,
    -- 1, 2, 3, … per organisation, without gaps
    sequence bigint not null,
    -- dotted words: scorecard.submitted, interview.overdue, …
    type text not null,
    -- the resource the event is about, e.g. scorecards/{id}
    resource text not null,
    -- JSON object; resource names and numbers, never evidence or personal data
    payload text not null,
    created_at bigint not null,
    constraint events_pkey primary key (org_id, sequence)
);

create table webhooks (
    org_id text not null,
    id text not null,
    url text not null,
    -- JSON array of event types; [] means every type
    event_types text not null,
    -- the HMAC key deliveries are signed with; never returned by the API
    secret text not null,
    -- every event up to this sequence was delivered or dead-lettered
    delivered_sequence bigint not null,
    created_at bigint not null,
    updated_at bigint not null,
    -- the replica delivering for this webhook and until when (a lease), so
    -- replicas never deliver the same event concurrently
    lease_owner text not null,
    lease_until bigint not null,
    constraint webhooks_pkey primary key (org_id, id)
);

create table webhook_deliveries (
    org_id text not null,
    webhook_id text not null,
    sequence bigint not null,
    -- retrying | delivered | dead | redeliver
    state text not null,
    attempts bigint not null,
    first_attempt_at bigint not null,
    next_attempt_at bigint not null,
    -- why the last attempt failed; '' after a success
    last_error text not null,
    updated_at bigint not null,
    constraint webhook_deliveries_pkey primary key (org_id, webhook_id, sequence),
    constraint webhook_deliveries_webhook_fkey foreign key (org_id, webhook_id)
        references webhooks (org_id, id) on delete cascade
);
create index webhook_deliveries_state_idx on webhook_deliveries (org_id, webhook_id, state);

-- What the last ranking.changed / rater.flagged event of a job or rater said
-- (key `ranking:{job id}` or `rater:{user id}`), so that such an event is
-- raised only on a change, and once across replicas and restarts.
create table published_states (
    org_id text not null,
    key text not null,
    value text not null,
    updated_at bigint not null,
    constraint published_states_pkey primary key (org_id, key)
);

-- The ATS's id of an interview created by ImportScorecards; '' otherwise.
alter table interviews add column external_id text not null default '';
create unique index interviews_external_id_key on interviews (org_id, external_id) where external_id <> '';
-- When interview.overdue was raised for it; null until then.
alter table interviews add column overdue_at bigint;
create index interviews_overdue_idx on interviews (scheduled_at) where overdue_at is null;

-- Incremental sync: List methods filter on update time.
create index jobs_updated_idx on jobs (org_id, updated_at);
create index candidates_updated_idx on candidates (org_id, updated_at);
create index interviews_updated_idx on interviews (org_id, updated_at);
create index scorecards_updated_idx on scorecards (org_id, updated_at);

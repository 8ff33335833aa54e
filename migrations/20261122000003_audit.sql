-- The audit log: one row per authenticated call, append-only (nothing in the
-- service updates or deletes it). Rows hold user ids and resource names, never
-- personal data or evidence, so erasure leaves nothing behind here.
create table audit_events (
    org_id text not null,
    -- UUIDv7: time-ordered, so id order is time order
    id text not null,
    actor text not null,
    -- comma-separated
    roles text not null,
    method text not null,
    -- 'read' | 'write'
    action text not null,
    resource text not null,
    request_id text not null,
    code text not null,
    created_at bigint not null,
    constraint audit_events_pkey primary key (org_id, id)
);
create index audit_events_actor_idx on audit_events (org_id, actor, id);
create index audit_events_resource_idx on audit_events (org_id, resource, id);

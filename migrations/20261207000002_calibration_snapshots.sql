-- An organisation's calibration state as it stood at an event sequence (the
-- ratings' numbers, the fitted model, the dense indexes), written when a
-- server stops and read back at the next start instead of reading every
-- scorecard and fitting afresh (docs/performance.md, "Restart from a
-- snapshot"). It holds no evidence, name or self-identification; a
-- candidate's erasure deletes it, and one older than an erasure is never used.
-- The state is written in parts of a few megabytes under a new generation,
-- and this row, written last, names the generation that is complete.
create table calibration_snapshots (
    org_id text not null,
    generation text not null,
    sequence bigint not null,
    format integer not null,
    parts integer not null,
    bytes bigint not null,
    created_at bigint not null,
    constraint calibration_snapshots_pkey primary key (org_id)
);
create table calibration_snapshot_parts (
    org_id text not null,
    generation text not null,
    part integer not null,
    body bytea not null,
    constraint calibration_snapshot_parts_pkey primary key (org_id, generation, part)
);

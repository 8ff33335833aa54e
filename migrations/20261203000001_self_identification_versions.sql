-- One counter per organisation, raised in the same transaction as every
-- change to its self-identification rows (set, import, erasure), so that a
-- server may keep the opened values for the compliance reports and know with
-- one read whether they are still current (an erasure is never served stale).
create table self_identification_versions (
    org_id text not null,
    version bigint not null,
    constraint self_identification_versions_pkey primary key (org_id)
);

-- Report sign-in sessions. The browser holds a random session id; only its
-- SHA-256 is stored here, with the caller the verified token stood for. A
-- session ends at sign-out (its row is deleted), at `expires_at` (the
-- token's own expiry or eight hours after sign-in, whichever is sooner), or
-- when the rows past their expiry are purged.
create table web_sessions (
    id_hash text not null,
    org_id text not null,
    actor text not null,
    -- comma-separated
    roles text not null,
    created_at bigint not null,
    expires_at bigint not null,
    constraint web_sessions_pkey primary key (id_hash)
);
create index web_sessions_expiry_idx on web_sessions (expires_at);

-- Voluntary self-identification (sex, race/ethnicity): special-category
-- personal data, kept apart from everything else and sealed (ChaCha20-Poly1305
-- under the operator's SCORECARD_SELF_ID_KEY; `key_id` names the key, not its
-- bytes). Never read into a score; deleted with the candidate's erasure.
create table self_identifications (
    org_id text not null,
    candidate_id text not null,
    key_id text not null,
    -- base64 of nonce and ciphertext; the row's org and candidate are its
    -- associated data
    sealed text not null,
    updated_at bigint not null,
    constraint self_identifications_pkey primary key (org_id, candidate_id)
);

-- +goose Up
-- Applications get their ingestion settings; API keys get a public id, a
-- displayable prefix and an expiry (the overlap window of a rotation).

ALTER TABLE applications
    ADD COLUMN allowed_origins text[]           NOT NULL DEFAULT '{}',
    ADD COLUMN rate_limit      double precision NOT NULL DEFAULT 0 CHECK (rate_limit >= 0),
    ADD COLUMN rate_burst      integer          NOT NULL DEFAULT 0 CHECK (rate_burst >= 0),
    ADD COLUMN strict_sessions boolean          NOT NULL DEFAULT false;

-- A volatile default is evaluated per row, so existing keys each get their
-- own id; new keys get one when the inserting code does not choose it.
ALTER TABLE api_keys
    ADD COLUMN id         uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN prefix     text NOT NULL DEFAULT '', -- the key's first 10 characters, safe to show
    ADD COLUMN expires_at timestamptz,              -- NULL: never; set when the key is rotated
    ADD CONSTRAINT api_keys_id_key UNIQUE (id);

CREATE INDEX api_keys_app ON api_keys (app_id, created_at, id);
CREATE INDEX applications_created ON applications (created_at, id);

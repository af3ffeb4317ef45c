-- +goose Up
-- Applications and their API keys. Keys are stored only as SHA-256 hashes.
CREATE TABLE applications (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

CREATE TABLE api_keys (
    hash       bytea PRIMARY KEY CHECK (length(hash) = 32),
    app_id     uuid NOT NULL REFERENCES applications (id),
    scopes     text[] NOT NULL,
    label      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Sessions: registered by an application or created by their first event.
-- first/last event time and count are maintained by the writer, per batch.
CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    app_id         uuid NOT NULL,
    created_at     timestamptz NOT NULL,
    registered_at  timestamptz,
    first_event_at timestamptz,
    last_event_at  timestamptz,
    event_count    bigint NOT NULL DEFAULT 0 CHECK (event_count >= 0)
);
CREATE INDEX sessions_created ON sessions (created_at, id);

CREATE TABLE events (
    id          uuid PRIMARY KEY,
    app_id      uuid NOT NULL,
    session_id  uuid NOT NULL,
    category    text NOT NULL,
    name        text NOT NULL,
    data        jsonb NOT NULL,
    "timestamp" timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    updated_at  timestamptz
);
-- Keyset pagination is on ("timestamp", id); each index serves one filter.
CREATE INDEX events_session_ts  ON events (session_id, "timestamp", id);
CREATE INDEX events_category_ts ON events (category, "timestamp", id);
CREATE INDEX events_ts          ON events ("timestamp", id);

-- Error records: why an event was rejected, with the original bytes.
CREATE TABLE errors (
    id           uuid PRIMARY KEY,
    app_id       uuid NOT NULL,
    session_id   uuid,
    stage        text NOT NULL,
    reason_codes text[] NOT NULL,
    reasons      jsonb NOT NULL,
    payload      bytea NOT NULL,
    received_at  timestamptz NOT NULL,
    detected_at  timestamptz NOT NULL
);
CREATE INDEX errors_detected ON errors (detected_at, id);

-- +goose Up
-- Per-type JSON Schemas (issue 4, docs/schemas.md): the versions of the
-- schema of each event type (category, name). A version is immutable once
-- added; query-api assigns max + 1 under a transaction-scoped advisory lock
-- per type, or takes the version a file of EYE_SCHEMA_DIR names.
--
-- published_at is set once the schemas topic acknowledged the version:
-- rows with NULL are republished by query-api until they are (an outbox).
CREATE TABLE event_schemas (
    category     text        NOT NULL,
    name         text        NOT NULL,
    version      integer     NOT NULL CHECK (version >= 1),
    schema       jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   uuid,                      -- api_keys.id of the admin key; NULL: EYE_SCHEMA_DIR
    published_at timestamptz,
    PRIMARY KEY (category, name, version)
);
CREATE INDEX event_schemas_unpublished ON event_schemas (category, name, version) WHERE published_at IS NULL;

-- With strict types, events of a type that has no schema are errors
-- (unknown_event_type) instead of being accepted unchecked.
ALTER TABLE applications ADD COLUMN strict_types boolean NOT NULL DEFAULT false;

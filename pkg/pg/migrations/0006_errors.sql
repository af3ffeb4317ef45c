-- +goose Up
-- Error records teams can filter, group and replay (issue 4, docs/errors.md).
--
-- errors gains what teams filter and group by, and replay lineage:
--   category, name      the payload's "category" and "name" when it decodes as a
--                       JSON object whose fields are strings (at most 255
--                       characters are kept, the limit of the rules); NULL
--                       otherwise. Filled by the writer.
--   schema_version      the version of the type's JSON Schema that applied;
--                       NULL when none did.
--   replay_of           for a record a replay produced (the replayed event
--                       failed again): the error record that was replayed.
--   replay_attempts     how many replays of this record were started; the
--                       attempt number makes the id of a failed replay's error
--                       record (contract.ErrorID), so each attempt keeps its
--                       own record.
--   replayed_as         the event id the last replay published (set once
--                       Kafka acknowledged it), and replayed_at when.
-- events gains replayed_from: the error record whose replay it is.
ALTER TABLE errors
    ADD COLUMN category        text,
    ADD COLUMN name            text,
    ADD COLUMN schema_version  integer,
    ADD COLUMN replay_of       uuid,
    ADD COLUMN replay_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN replayed_as     uuid,
    ADD COLUMN replayed_at     timestamptz;

ALTER TABLE events ADD COLUMN replayed_from uuid;

-- Backfill category and name of the records stored before: payloads that are
-- not UTF-8 JSON objects (or that jsonb refuses) keep NULL.
-- +goose StatementBegin
CREATE FUNCTION pg_temp.eye_payload_text(payload bytea, field text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    doc jsonb;
BEGIN
    doc := convert_from(payload, 'UTF8')::jsonb;
    IF jsonb_typeof(doc) <> 'object' OR jsonb_typeof(doc -> field) <> 'string' THEN
        RETURN NULL;
    END IF;
    RETURN left(doc ->> field, 255);
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
-- +goose StatementEnd

UPDATE errors SET
    category = pg_temp.eye_payload_text(payload, 'category'),
    name     = pg_temp.eye_payload_text(payload, 'name')
WHERE length(payload) > 0;

-- A read key's list, summary and replay selection are one application's
-- records over a time range, newest (or oldest) first.
CREATE INDEX IF NOT EXISTS errors_app_detected ON errors (app_id, detected_at, id);
-- The category and name filters of one application (the drill-down from a
-- summary group); category alone uses the prefix.
CREATE INDEX IF NOT EXISTS errors_app_type ON errors (app_id, category, name, detected_at, id);

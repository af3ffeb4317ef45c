-- +goose Up
-- Storage and query at scale (issue 5): tenant-first event indexes, the
-- audit of event changes, the record of session erasures.
--
-- Events: every query of the query API runs either for one application (a
-- read key is scoped to its own) or, for admin keys without an application
-- filter, once per application (a loose index scan over app_id, see
-- services/query-api/internal/query). So the time and category indexes lead
-- with app_id: a small tenant's page never wades through a big tenant's rows.
-- events_app_ts carries category and name so the dashboard counts
-- (GET /stats/events) are index-only scans. Three secondary indexes, as
-- before; docs/benchmarks.md has the measurements.
--
-- On a large live table, build the new indexes first with
-- CREATE INDEX CONCURRENTLY under these names; IF NOT EXISTS then skips them.
CREATE INDEX IF NOT EXISTS events_app_category_ts ON events (app_id, category, "timestamp", id);
CREATE INDEX IF NOT EXISTS events_app_ts ON events (app_id, "timestamp", id) INCLUDE (category, name);
DROP INDEX IF EXISTS events_category_ts;
DROP INDEX IF EXISTS events_ts;
-- events_session_ts (session_id, "timestamp", id) stays: timelines, the
-- session filter, erasure.

-- Error records by session: the errors list's session filter, erasure.
CREATE INDEX IF NOT EXISTS errors_session ON errors (session_id) WHERE session_id IS NOT NULL;

-- Every change made to an event through the query API, written in the
-- transaction of the change. before/after are the event as the API showed it
-- (after is NULL for a deletion). session_id is kept so that erasing a session
-- also erases the audit of its events, deleted ones included.
CREATE TABLE event_audit (
    id           uuid PRIMARY KEY,              -- UUIDv7
    event_id     uuid NOT NULL,
    session_id   uuid NOT NULL,
    action       text NOT NULL CHECK (action IN ('replace', 'patch', 'delete')),
    actor_key_id uuid NOT NULL,                 -- api_keys.id of the key used
    actor_app_id uuid NOT NULL,                 -- the application of that key
    at           timestamptz NOT NULL DEFAULT now(),
    before       jsonb,
    after        jsonb
);
CREATE INDEX event_audit_event ON event_audit (event_id, at, id);
CREATE INDEX event_audit_session ON event_audit (session_id);

-- Who erased which session and when (DELETE /sessions/{id}). The session's
-- data and the audit of its events are gone; this record, which holds none
-- of their content, is what remains. id is the tombstone's id on the
-- erasures topic.
CREATE TABLE session_erasures (
    id            uuid PRIMARY KEY,
    session_id    uuid NOT NULL,
    app_id        uuid NOT NULL,                -- nil UUID: nothing of it was stored
    actor_key_id  uuid NOT NULL,
    actor_app_id  uuid NOT NULL,
    requested_at  timestamptz NOT NULL,         -- the tombstone's requested_at
    erased_at     timestamptz NOT NULL DEFAULT now(),
    events        bigint NOT NULL,
    errors        bigint NOT NULL,
    audit_entries bigint NOT NULL
);
CREATE INDEX session_erasures_session ON session_erasures (session_id);

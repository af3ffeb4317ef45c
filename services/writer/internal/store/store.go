// Package store persists events, sessions and error records in Postgres in
// batches. Every write is idempotent (unique ids, ON CONFLICT), so Kafka's
// at-least-once delivery stores each record exactly once, and session
// aggregates count only rows actually inserted.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
)

// Store writes to Postgres.
type Store struct {
	db *sqlx.DB
}

// New returns a Store on db.
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("store: nil db")
	}
	return &Store{db: db}, nil
}

// Rejected is an event Postgres refused to store, with the reason.
type Rejected struct {
	Event event.Event
	Err   error
}

// insertEvents inserts events and folds the rows actually inserted into
// their sessions, in one statement: a redelivered event changes nothing,
// and concurrent writers serialise on the session rows (taken in id order,
// so they cannot deadlock).
const insertEvents = `
WITH input AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
		AS t(id, app_id, session_id, category, name, data, ts, received_at, client_ts)
), inserted AS (
	INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at, client_timestamp)
	SELECT id, app_id, session_id, category, name, data, ts, received_at, client_ts FROM input
	ON CONFLICT (id) DO NOTHING
	RETURNING app_id, session_id, "timestamp", received_at
)
INSERT INTO sessions AS s (id, app_id, created_at, first_event_at, last_event_at, event_count)
SELECT session_id, (array_agg(app_id))[1], min(received_at), min("timestamp"), max("timestamp"), count(*)
FROM inserted GROUP BY session_id ORDER BY session_id
ON CONFLICT (id) DO UPDATE SET
	first_event_at = LEAST(s.first_event_at, EXCLUDED.first_event_at),
	last_event_at  = GREATEST(s.last_event_at, EXCLUDED.last_event_at),
	event_count    = s.event_count + EXCLUDED.event_count
WHERE s.app_id = EXCLUDED.app_id -- CheckSessions turns another application's session into an error first`

// InsertEvents stores events idempotently. When Postgres refuses a value
// (e.g. \u0000 inside jsonb), the batch is retried row by row and the
// refused events are returned, so the caller can record them as errors
// instead of stalling the partition.
func (s *Store) InsertEvents(ctx context.Context, events []event.Event) ([]Rejected, error) {
	if len(events) == 0 {
		return nil, nil
	}
	err := s.insertEvents(ctx, events)
	if err == nil || !pg.IsDataError(err) {
		return nil, err
	}
	var rejected []Rejected
	for _, e := range events {
		err := s.insertEvents(ctx, []event.Event{e})
		switch {
		case err == nil:
		case pg.IsDataError(err):
			rejected = append(rejected, Rejected{Event: e, Err: err})
		default:
			return nil, err
		}
	}
	return rejected, nil
}

func (s *Store) insertEvents(ctx context.Context, events []event.Event) error {
	n := len(events)
	ids, apps, sessions := make([]string, n), make([]string, n), make([]string, n)
	cats, names, data := make([]string, n), make([]string, n), make([]string, n)
	ts, recv, client := make([]string, n), make([]string, n), make([]sql.NullString, n)
	for i, e := range events {
		ids[i], apps[i], sessions[i] = e.ID.String(), e.AppID.String(), e.SessionID.String()
		cats[i], names[i], data[i] = e.Category, e.Name, string(e.Data)
		ts[i], recv[i] = e.Timestamp.Format(time.RFC3339Nano), e.ReceivedAt.Format(time.RFC3339Nano)
		if !e.ClientTimestamp.IsZero() {
			client[i] = sql.NullString{String: e.ClientTimestamp.Format(time.RFC3339Nano), Valid: true}
		}
	}
	_, err := s.db.ExecContext(ctx, insertEvents, pq.Array(ids), pq.Array(apps), pq.Array(sessions),
		pq.Array(cats), pq.Array(names), pq.Array(data), pq.Array(ts), pq.Array(recv), pq.Array(client))
	if err != nil {
		return fmt.Errorf("insert %d events: %w", n, err)
	}
	return nil
}

const insertErrors = `
INSERT INTO errors (id, app_id, session_id, stage, reason_codes, reasons, payload, received_at, detected_at)
SELECT id, app_id, session_id, stage,
	ARRAY(SELECT r->>'code' FROM jsonb_array_elements(reasons) r), reasons, payload, received_at, detected_at
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], $6::bytea[], $7::timestamptz[], $8::timestamptz[])
	AS t(id, app_id, session_id, stage, reasons, payload, received_at, detected_at)
ON CONFLICT (id) DO NOTHING`

// InsertErrors stores error records idempotently.
func (s *Store) InsertErrors(ctx context.Context, recs []contract.Error) error {
	if len(recs) == 0 {
		return nil
	}
	n := len(recs)
	ids, apps, sessions := make([]string, n), make([]string, n), make([]sql.NullString, n)
	stages, reasons, recv, detected := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads := make(pq.ByteaArray, n)
	for i, r := range recs {
		ids[i], apps[i], stages[i] = r.ID.String(), r.AppID.String(), r.Stage
		if r.SessionID != nil {
			sessions[i] = sql.NullString{String: r.SessionID.String(), Valid: true}
		}
		b, err := json.Marshal(storable(r.Reasons))
		if err != nil {
			return fmt.Errorf("encode reasons: %w", err)
		}
		reasons[i] = string(b)
		p, err := r.Payload.Bytes()
		if err != nil {
			p = []byte(r.Payload.Data) // undecodable base64: keep the text as it came
		}
		payloads[i] = p
		recv[i], detected[i] = r.ReceivedAt.Format(time.RFC3339Nano), r.DetectedAt.Format(time.RFC3339Nano)
	}
	_, err := s.db.ExecContext(ctx, insertErrors, pq.Array(ids), pq.Array(apps), pq.Array(sessions),
		pq.Array(stages), pq.Array(reasons), payloads, pq.Array(recv), pq.Array(detected))
	if err != nil {
		return fmt.Errorf("insert %d errors: %w", n, err)
	}
	return nil
}

// storable makes reasons safe for jsonb, which refuses NUL characters: a
// reason quoting a bad value must never block its own error record.
func storable(rs event.Reasons) event.Reasons {
	out := make(event.Reasons, len(rs))
	clean := strings.NewReplacer("\x00", "\uFFFD")
	for i, r := range rs {
		out[i] = event.Reason{Code: event.Code(clean.Replace(string(r.Code))), Field: clean.Replace(r.Field), Message: clean.Replace(r.Message)}
	}
	return out
}

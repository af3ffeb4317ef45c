// Package postgres is the writer's storage: it persists events, session
// aggregates (through pkg/sessions, which owns that table) and error
// records in Postgres in batches, implementing persist.Store. Every write is idempotent (unique ids; events go in with COPY,
// which fails whole on a stored id and is then redone with ON CONFLICT), so
// Kafka's at-least-once delivery stores each record exactly once, and
// session aggregates count only rows actually inserted.
package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"golang.org/x/sync/errgroup"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/sessions"
	"github.com/the-eye/eye/services/writer/internal/persist"
)

// Store writes to Postgres.
type Store struct {
	db       *sqlx.DB
	sessions *sessions.Store
	lanes    int
}

var _ persist.Store = (*Store)(nil)

// DefaultLanes is how many transactions InsertEvents runs at once for a
// large batch: two keep both cores of the reference machine busy (one
// Postgres backend is the bottleneck of a single COPY).
const DefaultLanes = 2

// minLane is the smallest share of a batch worth its own transaction.
const minLane = 250

// Option configures a Store.
type Option func(*Store)

// Lanes sets how many transactions, on as many connections, InsertEvents
// splits a large batch into (by session, so they never wait on each
// other's session rows). 1 writes every batch in one transaction.
func Lanes(n int) Option {
	return func(s *Store) { s.lanes = max(n, 1) }
}

// New returns a Store on db.
func New(db *sqlx.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("postgres: nil db")
	}
	ss, err := sessions.New(db)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, sessions: ss, lanes: DefaultLanes}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// The columns of events a batch fills, in COPY order.
const copyEvents = `COPY events (id, app_id, session_id, category, name, data, "timestamp", received_at, client_timestamp) FROM STDIN`

// insertEventsOnConflict inserts events that are not yet stored and
// returns what the rows it inserted add to their sessions (sessions.Fold
// then counts them), so a redelivered event is not counted again.
const insertEventsOnConflict = `
WITH input AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
		AS t(id, app_id, session_id, category, name, data, ts, received_at, client_ts)
), inserted AS (
	INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at, client_timestamp)
	SELECT id, app_id, session_id, category, name, data, ts, received_at, client_ts FROM input
	ON CONFLICT (id) DO NOTHING
	RETURNING app_id, session_id, "timestamp", received_at
)
SELECT session_id, (array_agg(app_id))[1] AS app_id, min(received_at) AS received,
	min("timestamp") AS first, max("timestamp") AS last, count(*) AS events
FROM inserted GROUP BY session_id ORDER BY session_id`

// InsertEvents stores events idempotently and adds them to their sessions'
// counts and times, exactly once.
//
// The batch goes in with COPY, the fastest way into Postgres, and its
// per-session aggregates are folded into sessions in the same transaction:
// a COPY either inserts every row or fails, so when it commits every event
// of the batch is new and counted once. When some event is already stored
// (a redelivery, or another writer inserting it concurrently), the COPY
// fails with a unique violation, is rolled back, and the batch goes in
// again with INSERT … ON CONFLICT DO NOTHING, which counts only the rows it
// inserts. Events are sorted by id, so two writers inserting the same
// events take them in the same order and cannot deadlock.
//
// A large batch is split by session into lanes written concurrently, each
// in its own transaction (see Lanes). A failure in one lane fails the call;
// the lanes already committed make the retry of the batch find their
// events stored, which the ON CONFLICT path skips.
//
// When Postgres refuses a value (e.g. \u0000 inside jsonb), the batch is
// split in halves until the refused events are alone, and those are
// returned, so the caller can record them as errors instead of stalling
// the partition.
func (s *Store) InsertEvents(ctx context.Context, events []event.Event) ([]persist.Rejected, error) {
	lanes := splitBySession(uniqueByID(events), min(s.lanes, len(events)/minLane))
	if len(lanes) == 1 {
		return s.insertSplitting(ctx, lanes[0])
	}
	rejected := make([][]persist.Rejected, len(lanes))
	g, ctx := errgroup.WithContext(ctx)
	for i, lane := range lanes {
		g.Go(func() (err error) {
			rejected[i], err = s.insertSplitting(ctx, lane)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(rejected...), nil
}

// splitBySession deals events into n lanes by session (keeping their
// order); all the events of a session go to the same lane.
func splitBySession(events []event.Event, n int) [][]event.Event {
	if n <= 1 {
		return [][]event.Event{events}
	}
	lanes := make([][]event.Event, n)
	for _, e := range events {
		i := int(binary.BigEndian.Uint32(e.SessionID[12:]) % uint32(n))
		lanes[i] = append(lanes[i], e)
	}
	return slices.DeleteFunc(lanes, func(l []event.Event) bool { return len(l) == 0 })
}

// insertSplitting inserts events, bisecting around refused rows.
func (s *Store) insertSplitting(ctx context.Context, events []event.Event) ([]persist.Rejected, error) {
	if len(events) == 0 {
		return nil, nil
	}
	err := s.insertBatch(ctx, events)
	switch {
	case err == nil:
		return nil, nil
	case !pg.IsDataError(err):
		return nil, err
	case len(events) == 1:
		return []persist.Rejected{{Event: events[0], Err: err}}, nil
	}
	half := len(events) / 2
	rejected, err := s.insertSplitting(ctx, events[:half])
	if err != nil {
		return nil, err
	}
	more, err := s.insertSplitting(ctx, events[half:])
	if err != nil {
		return nil, err
	}
	return append(rejected, more...), nil
}

// insertBatch stores events (unique, sorted by id) in one transaction:
// with COPY, or with ON CONFLICT when some are already stored.
func (s *Store) insertBatch(ctx context.Context, events []event.Event) error {
	err := s.copyBatch(ctx, events)
	if err == nil || !(pg.IsUniqueViolation(err) || isDeadlock(err)) {
		return err
	}
	return s.insertOnConflict(ctx, events)
}

// copyBatch COPYs events into events and folds them into their sessions,
// in one transaction. It fails with a unique violation, and stores
// nothing, when any event is already stored.
func (s *Store) copyBatch(ctx context.Context, events []event.Event) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("copy %d events: %w", len(events), err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := copyRows(ctx, tx, events); err != nil {
		return fmt.Errorf("copy %d events: %w", len(events), err)
	}
	if err := sessions.Fold(ctx, tx, sessions.Tally(events)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("copy %d events: commit: %w", len(events), err)
	}
	return nil
}

// copyRows streams events into a COPY inside tx.
func copyRows(ctx context.Context, tx *sql.Tx, events []event.Event) error {
	stmt, err := tx.PrepareContext(ctx, copyEvents)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, e := range events {
		var client any // NULL when the event carried no client time
		if !e.ClientTimestamp.IsZero() {
			client = e.ClientTimestamp
		}
		if _, err := stmt.ExecContext(ctx, e.ID.String(), e.AppID.String(), e.SessionID.String(), e.Category, e.Name,
			string(e.Data), e.Timestamp, e.ReceivedAt, client); err != nil {
			return err
		}
	}
	_, err = stmt.ExecContext(ctx) // flushes the stream and reports its outcome
	return err
}

// uniqueByID returns events sorted by id without repeats (a batch may
// carry the same event twice; the first copy is kept).
func uniqueByID(events []event.Event) []event.Event {
	out := slices.Clone(events)
	slices.SortStableFunc(out, func(a, b event.Event) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return slices.CompactFunc(out, func(a, b event.Event) bool { return a.ID == b.ID })
}

// isDeadlock reports whether err is Postgres breaking a deadlock.
func isDeadlock(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "40P01"
}

// insertOnConflict stores events with INSERT … ON CONFLICT DO NOTHING,
// counting in sessions only the rows it inserted, in one transaction.
func (s *Store) insertOnConflict(ctx context.Context, events []event.Event) error {
	n := len(events)
	ids, apps, sids := make([]string, n), make([]string, n), make([]string, n)
	cats, names, data := make([]string, n), make([]string, n), make([]string, n)
	ts, recv, client := make([]string, n), make([]string, n), make([]sql.NullString, n)
	for i, e := range events {
		ids[i], apps[i], sids[i] = e.ID.String(), e.AppID.String(), e.SessionID.String()
		cats[i], names[i], data[i] = e.Category, e.Name, string(e.Data)
		ts[i], recv[i] = e.Timestamp.Format(time.RFC3339Nano), e.ReceivedAt.Format(time.RFC3339Nano)
		if !e.ClientTimestamp.IsZero() {
			client[i] = sql.NullString{String: e.ClientTimestamp.Format(time.RFC3339Nano), Valid: true}
		}
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert %d events: %w", n, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var acts []sessions.Activity
	if err := tx.SelectContext(ctx, &acts, insertEventsOnConflict, pq.Array(ids), pq.Array(apps), pq.Array(sids),
		pq.Array(cats), pq.Array(names), pq.Array(data), pq.Array(ts), pq.Array(recv), pq.Array(client)); err != nil {
		return fmt.Errorf("insert %d events: %w", n, err)
	}
	if err := sessions.Fold(ctx, tx, acts); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert %d events: commit: %w", n, err)
	}
	return nil
}

const insertErrors = `
INSERT INTO errors (id, app_id, session_id, stage, reason_codes, reasons, payload, received_at, detected_at,
	category, name, schema_version, replay_of)
SELECT id, app_id, session_id, stage,
	ARRAY(SELECT r->>'code' FROM jsonb_array_elements(reasons) r), reasons, payload, received_at, detected_at,
	category, name, schema_version, replay_of
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], $6::bytea[], $7::timestamptz[], $8::timestamptz[],
	$9::text[], $10::text[], $11::integer[], $12::uuid[])
	AS t(id, app_id, session_id, stage, reasons, payload, received_at, detected_at, category, name, schema_version, replay_of)
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
	x := extrasOf(recs)
	_, err := s.db.ExecContext(ctx, insertErrors, pq.Array(ids), pq.Array(apps), pq.Array(sessions),
		pq.Array(stages), pq.Array(reasons), payloads, pq.Array(recv), pq.Array(detected),
		pq.Array(x.categories), pq.Array(x.names), pq.Array(x.versions), pq.Array(x.replayOf))
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

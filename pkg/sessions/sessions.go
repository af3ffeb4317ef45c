// Package sessions owns the sessions table: every service that registers,
// looks up or counts sessions does it through this package, so the table's
// SQL and its rules (a session belongs to one application for good;
// aggregates count each stored event once) live in one place.
//
// The gateway registers sessions (Register), the writer checks a batch's
// sessions (Lookup) and adds what it stored to them (Tally and Fold, in
// the transaction that stores the events), and the query-api reads them
// (Get, Page), recounts one after an event edit (Recount) and deletes one
// on erasure (Lock, Delete), in the transactions of those changes.
package sessions

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/event"
)

// ErrOtherApplication is returned by Register for a session id that
// another application already uses.
var ErrOtherApplication = errors.New("the session belongs to another application")

// Store reads and writes sessions on a database.
type Store struct {
	db *sqlx.DB
}

// New returns a Store on db.
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("sessions: nil db")
	}
	return &Store{db: db}, nil
}

// register creates the session, or marks an existing one of the same
// application registered; a session of another application is left alone
// and no row comes back.
const register = `
	INSERT INTO sessions AS s (id, app_id, created_at, registered_at) VALUES ($1, $2, $3, $3)
	ON CONFLICT (id) DO UPDATE SET registered_at = COALESCE(s.registered_at, EXCLUDED.registered_at)
	WHERE s.app_id = EXCLUDED.app_id
	RETURNING id`

// Register records that application app registered session id at at
// (creating the session if its events have not yet). Registering again
// keeps the first time. A session of another application is refused with
// ErrOtherApplication.
func (s *Store) Register(ctx context.Context, app, id uuid.UUID, at time.Time) error {
	var got uuid.UUID
	err := s.db.GetContext(ctx, &got, register, id, app, at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrOtherApplication
	case err != nil:
		return fmt.Errorf("register session: %w", err)
	}
	return nil
}

// Known is what Lookup tells of a stored session.
type Known struct {
	AppID uuid.UUID
	// Registered: the application registered it (POST /sessions), rather
	// than its events creating it.
	Registered bool
}

// Lookup returns the stored sessions among ids (which may repeat), by id.
func (s *Store) Lookup(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]Known, error) {
	// Each id once: a batch holds dozens of events per session, and parsing
	// the array is a large part of the lookup.
	unique := make([]string, 0, len(ids)/4)
	seen := make(map[uuid.UUID]bool, len(ids)/4)
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			unique = append(unique, id.String())
		}
	}
	const q = `SELECT id, app_id, registered_at IS NOT NULL AS registered FROM sessions WHERE id = ANY($1::uuid[])`
	var rows []struct {
		ID         uuid.UUID `db:"id"`
		AppID      uuid.UUID `db:"app_id"`
		Registered bool      `db:"registered"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, pq.Array(unique)); err != nil {
		return nil, fmt.Errorf("look up sessions: %w", err)
	}
	out := make(map[uuid.UUID]Known, len(rows))
	for _, r := range rows {
		out[r.ID] = Known{AppID: r.AppID, Registered: r.Registered}
	}
	return out, nil
}

// Activity is what a batch of newly stored events adds to one session.
type Activity struct {
	SessionID uuid.UUID `db:"session_id"`
	// AppID is the application of the session's first event in the batch.
	AppID uuid.UUID `db:"app_id"`
	// Received is the earliest received time: the created_at of a session
	// the batch creates.
	Received time.Time `db:"received"`
	// First and Last are the earliest and latest event times, Events the
	// number of events.
	First  time.Time `db:"first"`
	Last   time.Time `db:"last"`
	Events int64     `db:"events"`
}

// Tally computes what events add to their sessions, in session id order
// (the order Fold takes the rows in, so concurrent writers cannot
// deadlock).
func Tally(events []event.Event) []Activity {
	by := make(map[uuid.UUID]int, len(events)/8) // index in out
	out := make([]Activity, 0, len(events)/8)
	for _, e := range events {
		i, ok := by[e.SessionID]
		if !ok {
			by[e.SessionID] = len(out)
			out = append(out, Activity{SessionID: e.SessionID, AppID: e.AppID, Received: e.ReceivedAt, First: e.Timestamp, Last: e.Timestamp, Events: 1})
			continue
		}
		a := &out[i]
		if e.ReceivedAt.Before(a.Received) {
			a.Received = e.ReceivedAt
		}
		if e.Timestamp.Before(a.First) {
			a.First = e.Timestamp
		}
		if e.Timestamp.After(a.Last) {
			a.Last = e.Timestamp
		}
		a.Events++
	}
	slices.SortFunc(out, func(a, b Activity) int { return bytes.Compare(a.SessionID[:], b.SessionID[:]) })
	return out
}

// fold adds per-session activity to the sessions, creating the missing
// ones. Rows are taken in id order, so concurrent writers cannot
// deadlock. A session of another application is left alone (the writer
// turns such events into errors before storing them).
const fold = `
INSERT INTO sessions AS s (id, app_id, created_at, first_event_at, last_event_at, event_count)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::bigint[])
	AS t(id, app_id, created_at, first_event_at, last_event_at, event_count)
ORDER BY id
ON CONFLICT (id) DO UPDATE SET
	first_event_at = LEAST(s.first_event_at, EXCLUDED.first_event_at),
	last_event_at  = GREATEST(s.last_event_at, EXCLUDED.last_event_at),
	event_count    = s.event_count + EXCLUDED.event_count
WHERE s.app_id = EXCLUDED.app_id`

// Fold adds acts to their sessions inside tx, the transaction that stored
// the events they count, so each event is counted exactly once: when tx
// rolls back, so does the count.
func Fold(ctx context.Context, tx sqlx.ExecerContext, acts []Activity) error {
	if len(acts) == 0 {
		return nil
	}
	n := len(acts)
	ids, apps := make([]string, n), make([]string, n)
	created, first, last, counts := make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
	for i, a := range acts {
		ids[i], apps[i] = a.SessionID.String(), a.AppID.String()
		created[i] = a.Received.Format(time.RFC3339Nano)
		first[i], last[i] = a.First.Format(time.RFC3339Nano), a.Last.Format(time.RFC3339Nano)
		counts[i] = a.Events
	}
	if _, err := tx.ExecContext(ctx, fold, pq.Array(ids), pq.Array(apps), pq.Array(created),
		pq.Array(first), pq.Array(last), pq.Array(counts)); err != nil {
		return fmt.Errorf("fold %d sessions: %w", n, err)
	}
	return nil
}

// ErrNotFound is returned by Get for a session that does not exist (or
// is not of the application asked for).
var ErrNotFound = errors.New("no such session")

// columns are the sessions columns a Row scans.
const columns = `id, app_id, created_at, registered_at, first_event_at, last_event_at, event_count`

// Row is a stored session.
type Row struct {
	ID           uuid.UUID    `db:"id"`
	AppID        uuid.UUID    `db:"app_id"`
	CreatedAt    time.Time    `db:"created_at"`
	RegisteredAt sql.NullTime `db:"registered_at"`
	FirstEventAt sql.NullTime `db:"first_event_at"`
	LastEventAt  sql.NullTime `db:"last_event_at"`
	EventCount   int64        `db:"event_count"`
}

// Get returns session id; when app is not nil, only a session of that
// application (ErrNotFound otherwise).
func (s *Store) Get(ctx context.Context, id uuid.UUID, app *uuid.UUID) (Row, error) {
	var r Row
	err := s.db.GetContext(ctx, &r, `SELECT `+columns+` FROM sessions WHERE id = $1 AND ($2::uuid IS NULL OR app_id = $2)`, id, app)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Row{}, ErrNotFound
	case err != nil:
		return Row{}, fmt.Errorf("get session: %w", err)
	}
	return r, nil
}

// Position is a session's place in a page: its created_at, then its id.
type Position struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// PageQuery asks for one page of sessions ordered by created_at, then id.
type PageQuery struct {
	// Apps: the session's application is every one of them (two different
	// ones match nothing); empty: any application.
	Apps []uuid.UUID
	// From and To bound created_at, inclusive; nil: unbounded.
	From, To *time.Time
	// After is the position the rows follow; nil: from the first.
	After *Position
	// Ascending reads oldest first; otherwise newest first.
	Ascending bool
	Limit     int
}

// Page returns up to q.Limit sessions matching q, in its order.
func (s *Store) Page(ctx context.Context, q PageQuery) ([]Row, error) {
	var (
		where []string
		args  []any
	)
	param := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	for _, app := range q.Apps {
		where = append(where, "app_id = "+param(app))
	}
	if q.From != nil {
		where = append(where, "created_at >= "+param(*q.From))
	}
	if q.To != nil {
		where = append(where, "created_at <= "+param(*q.To))
	}
	dir, cmp := "DESC", "<"
	if q.Ascending {
		dir, cmp = "ASC", ">"
	}
	if q.After != nil {
		t, id := param(q.After.CreatedAt), param(q.After.ID)
		where = append(where, fmt.Sprintf("(created_at, id) %s (%s, %s)", cmp, t, id))
	}
	stmt := "SELECT " + columns + " FROM sessions"
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	stmt += fmt.Sprintf(" ORDER BY created_at %s, id %s LIMIT %s", dir, dir, param(q.Limit))
	var rows []Row
	if err := s.db.SelectContext(ctx, &rows, stmt, args...); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return rows, nil
}

// Lock locks session id's row until tx ends (nothing when it does not
// exist). A writer folding events into the session meanwhile waits, so
// what tx then recounts or deletes includes every committed event.
func Lock(ctx context.Context, tx sqlx.ExecerContext, id uuid.UUID) error {
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, id); err != nil {
		return fmt.Errorf("lock session: %w", err)
	}
	return nil
}

// recount sets a session's aggregates from its stored events.
const recount = `
	UPDATE sessions s SET first_event_at = a.first, last_event_at = a.last, event_count = a.n
	FROM (SELECT min("timestamp") AS first, max("timestamp") AS last, count(*) AS n FROM events WHERE session_id = $1) a
	WHERE s.id = $1`

// Recount locks session id and recomputes its aggregates from its events
// inside tx, the transaction that changed or deleted one of them: a writer
// inserting events of this session concurrently either committed before
// (and is counted here) or waits for tx and then adds its own on top.
func Recount(ctx context.Context, tx sqlx.ExecerContext, id uuid.UUID) error {
	if err := Lock(ctx, tx, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, recount, id); err != nil {
		return fmt.Errorf("recount session: %w", err)
	}
	return nil
}

// Delete deletes session id inside tx and reports whether it existed.
func Delete(ctx context.Context, tx sqlx.ExecerContext, id uuid.UUID) (bool, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	if err != nil {
		return false, fmt.Errorf("delete session: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete session: %w", err)
	}
	return n > 0, nil
}

package query

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

// Store reads and changes events, sessions and errors in Postgres.
type Store struct {
	db      *sqlx.DB
	rules   event.Rules
	timeout time.Duration
	now     func() time.Time
}

// NewStore returns a Store; every statement runs under timeout.
func NewStore(db *sqlx.DB, rules event.Rules, timeout time.Duration) (*Store, error) {
	if db == nil {
		return nil, errors.New("query: nil db")
	}
	if timeout <= 0 {
		return nil, errors.New("query: timeout must be positive")
	}
	return &Store{db: db, rules: rules, timeout: timeout, now: time.Now}, nil
}

// list is one keyset-paginated query: rows ordered by (orderCol, id).
type list struct {
	where []string
	args  []any
}

func (l *list) add(cond string, arg any) {
	l.args = append(l.args, arg)
	l.where = append(l.where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(l.args))))
}

// page builds the statement for one page of table ordered by orderCol.
func (l *list) page(cols, table, orderCol string, order Order, after *cursor, limit int) (string, []any) {
	dir, cmp := "DESC", "<"
	if order == Oldest {
		dir, cmp = "ASC", ">"
	}
	if after != nil {
		l.args = append(l.args, after.T, after.ID)
		l.where = append(l.where, fmt.Sprintf("(%s, id) %s ($%d, $%d)", orderCol, cmp, len(l.args)-1, len(l.args)))
	}
	q := "SELECT " + cols + " FROM " + table
	if len(l.where) > 0 {
		q += " WHERE " + strings.Join(l.where, " AND ")
	}
	l.args = append(l.args, limit+1)
	q += fmt.Sprintf(" ORDER BY %s %s, id %s LIMIT $%d", orderCol, dir, dir, len(l.args))
	return q, l.args
}

// pageOf converts up to limit rows (a page query fetches limit+1 to learn
// whether more follow) and makes the cursor for the next page.
func pageOf[R, T any](rows []R, limit int, order Order, conv func(R) (T, error), pos func(T) (time.Time, uuid.UUID)) ([]T, string, error) {
	out := make([]T, 0, min(len(rows), limit))
	for _, r := range rows[:min(len(rows), limit)] {
		x, err := conv(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, x)
	}
	if len(rows) <= limit {
		return out, "", nil
	}
	t, id := pos(out[len(out)-1])
	return out, cursor{T: t, ID: id, Order: order}.encode(), nil
}

func limitOf(p Page) int {
	if p.Limit <= 0 {
		return DefaultLimit
	}
	return min(p.Limit, MaxLimit)
}

func (l *list) scope(s Scope, app *uuid.UUID) {
	if s.AppID != uuid.Nil {
		l.add("app_id = ?", s.AppID)
	} else if app != nil {
		l.add("app_id = ?", *app)
	}
}

func (l *list) between(col string, from, to *time.Time) {
	if from != nil {
		l.add(col+" >= ?", *from)
	}
	if to != nil {
		l.add(col+" <= ?", *to)
	}
}

const eventCols = `id, app_id, session_id, category, name, data, "timestamp", client_timestamp, received_at, version, updated_at`

type eventRow struct {
	ID         uuid.UUID    `db:"id"`
	AppID      uuid.UUID    `db:"app_id"`
	SessionID  uuid.UUID    `db:"session_id"`
	Category   string       `db:"category"`
	Name       string       `db:"name"`
	Data       []byte       `db:"data"`
	Timestamp  time.Time    `db:"timestamp"`
	ClientTS   sql.NullTime `db:"client_timestamp"`
	ReceivedAt time.Time    `db:"received_at"`
	Version    int          `db:"version"`
	UpdatedAt  sql.NullTime `db:"updated_at"`
}

func (r eventRow) toEvent() Event {
	e := Event{ID: r.ID, ApplicationID: r.AppID, SessionID: r.SessionID, Category: r.Category, Name: r.Name,
		Data: r.Data, Timestamp: r.Timestamp.UTC(), ClientTimestamp: timePtr(r.ClientTS), ReceivedAt: r.ReceivedAt.UTC(), Version: r.Version}
	if r.UpdatedAt.Valid {
		t := r.UpdatedAt.Time.UTC()
		e.UpdatedAt = &t
	}
	return e
}

// Events lists events matching f, one page at a time.
func (s *Store) Events(ctx context.Context, sc Scope, f EventFilter, p Page) ([]Event, string, error) {
	if f.Order == "" {
		f.Order = Newest
	}
	after, err := decodeCursor(p.Cursor, f.Order)
	if err != nil {
		return nil, "", err
	}
	var l list
	l.scope(sc, f.Application)
	if f.Session != nil {
		l.add("session_id = ?", *f.Session)
	}
	if f.Category != "" {
		l.add("category = ?", f.Category)
	}
	if f.Name != "" {
		l.add("name = ?", f.Name)
	}
	l.between(`"timestamp"`, f.From, f.To)
	limit := limitOf(p)
	q, args := l.page(eventCols, "events", `"timestamp"`, f.Order, after, limit)
	var rows []eventRow
	if err := s.selectRows(ctx, &rows, q, args...); err != nil {
		return nil, "", err
	}
	return pageOf(rows, limit, f.Order, func(r eventRow) (Event, error) { return r.toEvent(), nil },
		func(e Event) (time.Time, uuid.UUID) { return e.Timestamp, e.ID })
}

// Event returns one event visible in sc.
func (s *Store) Event(ctx context.Context, sc Scope, id uuid.UUID) (Event, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var r eventRow
	err := s.db.GetContext(ctx, &r, `SELECT `+eventCols+` FROM events WHERE id = $1 AND ($2::uuid IS NULL OR app_id = $2)`, id, scopeArg(sc))
	return r.toEvent(), notFound(err)
}

const sessionCols = `id, app_id, created_at, registered_at, first_event_at, last_event_at, event_count`

type sessionRow struct {
	ID           uuid.UUID    `db:"id"`
	AppID        uuid.UUID    `db:"app_id"`
	CreatedAt    time.Time    `db:"created_at"`
	RegisteredAt sql.NullTime `db:"registered_at"`
	FirstEventAt sql.NullTime `db:"first_event_at"`
	LastEventAt  sql.NullTime `db:"last_event_at"`
	EventCount   int64        `db:"event_count"`
}

func (r sessionRow) toSession() Session {
	return Session{ID: r.ID, ApplicationID: r.AppID, CreatedAt: r.CreatedAt.UTC(), RegisteredAt: timePtr(r.RegisteredAt),
		FirstEventAt: timePtr(r.FirstEventAt), LastEventAt: timePtr(r.LastEventAt), EventCount: r.EventCount}
}

// Sessions lists sessions, newest first.
func (s *Store) Sessions(ctx context.Context, sc Scope, f SessionFilter, p Page) ([]Session, string, error) {
	after, err := decodeCursor(p.Cursor, Newest)
	if err != nil {
		return nil, "", err
	}
	var l list
	l.scope(sc, f.Application)
	l.between("created_at", f.From, f.To)
	limit := limitOf(p)
	q, args := l.page(sessionCols, "sessions", "created_at", Newest, after, limit)
	var rows []sessionRow
	if err := s.selectRows(ctx, &rows, q, args...); err != nil {
		return nil, "", err
	}
	return pageOf(rows, limit, Newest, func(r sessionRow) (Session, error) { return r.toSession(), nil },
		func(x Session) (time.Time, uuid.UUID) { return x.CreatedAt, x.ID })
}

// Session returns one session visible in sc.
func (s *Store) Session(ctx context.Context, sc Scope, id uuid.UUID) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var r sessionRow
	err := s.db.GetContext(ctx, &r, `SELECT `+sessionCols+` FROM sessions WHERE id = $1 AND ($2::uuid IS NULL OR app_id = $2)`, id, scopeArg(sc))
	return r.toSession(), notFound(err)
}

const errorCols = `id, app_id, session_id, stage, reasons, payload, received_at, detected_at`

type errorRow struct {
	ID         uuid.UUID     `db:"id"`
	AppID      uuid.UUID     `db:"app_id"`
	SessionID  uuid.NullUUID `db:"session_id"`
	Stage      string        `db:"stage"`
	Reasons    []byte        `db:"reasons"`
	Payload    []byte        `db:"payload"`
	ReceivedAt time.Time     `db:"received_at"`
	DetectedAt time.Time     `db:"detected_at"`
}

func (r errorRow) toError() (Error, error) {
	e := Error{ID: r.ID, ApplicationID: r.AppID, Stage: r.Stage, Payload: contract.NewPayload(r.Payload),
		ReceivedAt: r.ReceivedAt.UTC(), DetectedAt: r.DetectedAt.UTC()}
	if r.SessionID.Valid {
		e.SessionID = &r.SessionID.UUID
	}
	if err := json.Unmarshal(r.Reasons, &e.Reasons); err != nil {
		return Error{}, fmt.Errorf("decode reasons of error %s: %w", r.ID, err)
	}
	return e, nil
}

// Errors lists error records, newest first.
func (s *Store) Errors(ctx context.Context, sc Scope, f ErrorFilter, p Page) ([]Error, string, error) {
	after, err := decodeCursor(p.Cursor, Newest)
	if err != nil {
		return nil, "", err
	}
	var l list
	l.scope(sc, f.Application)
	if f.Session != nil {
		l.add("session_id = ?", *f.Session)
	}
	if f.Reason != "" {
		l.add("reason_codes @> ?", pq.StringArray{f.Reason})
	}
	if f.Stage != "" {
		l.add("stage = ?", f.Stage)
	}
	l.between("detected_at", f.From, f.To)
	limit := limitOf(p)
	q, args := l.page(errorCols, "errors", "detected_at", Newest, after, limit)
	var rows []errorRow
	if err := s.selectRows(ctx, &rows, q, args...); err != nil {
		return nil, "", err
	}
	return pageOf(rows, limit, Newest, errorRow.toError,
		func(e Error) (time.Time, uuid.UUID) { return e.DetectedAt, e.ID })
}

// Error returns one error record visible in sc.
func (s *Store) Error(ctx context.Context, sc Scope, id uuid.UUID) (Error, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var r errorRow
	err := s.db.GetContext(ctx, &r, `SELECT `+errorCols+` FROM errors WHERE id = $1 AND ($2::uuid IS NULL OR app_id = $2)`, id, scopeArg(sc))
	if err != nil {
		return Error{}, notFound(err)
	}
	return r.toError()
}

func (s *Store) selectRows(ctx context.Context, dst any, q string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.db.SelectContext(ctx, dst, q, args...); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	return nil
}

func scopeArg(sc Scope) any {
	if sc.AppID == uuid.Nil {
		return nil
	}
	return sc.AppID
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	return nil
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

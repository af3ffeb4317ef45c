package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/sessions"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// Store is the query domain's storage: events, sessions (through
// pkg/sessions, their owner), error records, the audit of edits,
// erasures and replays, in Postgres. It implements query.Store,
// query.Erasures and query.Replays.
type Store struct {
	db       *sqlx.DB
	sessions *sessions.Store
	timeout  time.Duration
}

var (
	_ query.Store    = (*Store)(nil)
	_ query.Erasures = (*Store)(nil)
	_ query.Replays  = (*Store)(nil)
)

// NewStore returns a Store on db; every statement (or transaction) runs
// under timeout.
func NewStore(db *sqlx.DB, timeout time.Duration) (*Store, error) {
	if db == nil {
		return nil, errors.New("postgres: nil db")
	}
	if timeout <= 0 {
		return nil, errors.New("postgres: timeout must be positive")
	}
	ss, err := sessions.New(db)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, sessions: ss, timeout: timeout}, nil
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

// direction is the SQL sort direction of order and the comparison that
// selects the rows after a cursor.
func direction(order query.Order) (dir, cmp string) {
	if order == query.Oldest {
		return "ASC", ">"
	}
	return "DESC", "<"
}

// keyset adds the condition selecting the rows after w's position.
func (l *list) keyset(orderCol string, w window) {
	if w.after == nil {
		return
	}
	_, cmp := direction(w.order)
	l.args = append(l.args, w.after.T, w.after.ID)
	l.where = append(l.where, fmt.Sprintf("(%s, id) %s ($%d, $%d)", orderCol, cmp, len(l.args)-1, len(l.args)))
}

// param adds an argument and returns its placeholder.
func (l *list) param(v any) string {
	l.args = append(l.args, v)
	return fmt.Sprintf("$%d", len(l.args))
}

func (l *list) whereClause() string {
	if len(l.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(l.where, " AND ")
}

// page builds the statement reading w's rows of table ordered by orderCol
// (one more than the page holds, to learn whether more follow).
func (l *list) page(cols, table, orderCol string, w window) (string, []any) {
	dir, _ := direction(w.order)
	l.keyset(orderCol, w)
	q := "SELECT " + cols + " FROM " + table + l.whereClause()
	q += fmt.Sprintf(" ORDER BY %s %s, id %s LIMIT %s", orderCol, dir, dir, l.param(w.limit+1))
	return q, l.args
}

// appsCTE lists the applications that have events by a loose index scan on
// the app_id-led event indexes: one index descent per application, however
// many events each has (Postgres 15 and 16 do not skip-scan by themselves).
const appsCTE = `WITH RECURSIVE apps (id) AS (
	(SELECT app_id FROM events ORDER BY app_id LIMIT 1)
	UNION ALL
	SELECT (SELECT e.app_id FROM events e WHERE e.app_id > apps.id ORDER BY e.app_id LIMIT 1) FROM apps WHERE apps.id IS NOT NULL
)`

// eventPageAcrossApps builds the statement for one page of events of every
// application. The event indexes lead with app_id, so the page is the
// merge of each application's first page, read from the index alone, and
// only the rows of the final page are fetched whole.
func (l *list) eventPageAcrossApps(w window) (string, []any) {
	dir, _ := direction(w.order)
	l.keyset(`"timestamp"`, w)
	n := l.param(w.limit + 1)
	l.where = append([]string{"app_id = apps.id"}, l.where...)
	q := appsCTE + `, top AS (
	SELECT t.id, t.ts FROM apps CROSS JOIN LATERAL (
		SELECT id, "timestamp" AS ts FROM events` + l.whereClause() + `
		ORDER BY "timestamp" ` + dir + `, id ` + dir + ` LIMIT ` + n + `
	) t
	ORDER BY t.ts ` + dir + `, t.id ` + dir + ` LIMIT ` + n + `
)
SELECT ` + eventCols + ` FROM events JOIN top USING (id) ORDER BY "timestamp" ` + dir + `, id ` + dir
	return q, l.args
}

// pageOf makes the page of w from its rows (read with page) and converts
// them; at is a row's position.
func pageOf[R, T any](w window, rows []R, conv func(R) (T, error), at func(R) pos) ([]T, paging.Links, error) {
	rows, links := paging.Cut(w.list, rows, w.limit, w.cur, at)
	out := make([]T, 0, len(rows))
	for _, r := range rows {
		x, err := conv(r)
		if err != nil {
			return nil, paging.Links{}, err
		}
		out = append(out, x)
	}
	return out, links, nil
}

// scope limits the rows to what s may see, narrowed to application app
// when given (an application outside s matches nothing). It reports whether
// the rows are those of one application.
func (l *list) scope(s query.Scope, app *uuid.UUID) bool {
	if s.AppID != uuid.Nil {
		l.add("app_id = ?", s.AppID)
	}
	if app != nil && *app != s.AppID {
		l.add("app_id = ?", *app)
	}
	return s.AppID != uuid.Nil || app != nil
}

func (l *list) between(col string, from, to *time.Time) {
	if from != nil {
		l.add(col+" >= ?", *from)
	}
	if to != nil {
		l.add(col+" <= ?", *to)
	}
}

const eventCols = `id, app_id, session_id, category, name, data, "timestamp", client_timestamp, received_at, version, updated_at, replayed_from`

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
	// ReplayedFrom is the error record a replay stored the event from.
	ReplayedFrom uuid.NullUUID `db:"replayed_from"`
}

func (r eventRow) toEvent() query.Event {
	e := query.Event{ID: r.ID, ApplicationID: r.AppID, SessionID: r.SessionID, Session: query.SessionRef{ID: r.SessionID}, Category: r.Category, Name: r.Name,
		Data: r.Data, Timestamp: apitime.New(r.Timestamp), ClientTimestamp: apitime.Null(r.ClientTS), ReceivedAt: apitime.New(r.ReceivedAt),
		Version: r.Version, UpdatedAt: apitime.Null(r.UpdatedAt)}
	if r.ReplayedFrom.Valid {
		e.ReplayedFrom = &r.ReplayedFrom.UUID
	}
	return e
}

// Events implements query.Reader.
func (s *Store) Events(ctx context.Context, sc query.Scope, f query.EventFilter, p paging.Request) ([]query.Event, paging.Links, error) {
	w, err := openWindow("events", f.Order, p)
	if err != nil {
		return nil, paging.Links{}, err
	}
	var l list
	oneApp := l.scope(sc, f.Application)
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
	var q string
	var args []any
	if oneApp || f.Session != nil {
		q, args = l.page(eventCols, "events", `"timestamp"`, w)
	} else {
		q, args = l.eventPageAcrossApps(w)
	}
	var rows []eventRow
	if err := s.selectRows(ctx, &rows, q, args...); err != nil {
		return nil, paging.Links{}, err
	}
	return pageOf(w, rows, func(r eventRow) (query.Event, error) { return r.toEvent(), nil },
		func(r eventRow) pos { return pos{r.Timestamp, r.ID} })
}

type statRow struct {
	Bucket   time.Time      `db:"bucket"`
	Category sql.NullString `db:"category"`
	Name     sql.NullString `db:"name"`
	Count    int64          `db:"count"`
}

// Stats implements query.Reader: buckets without events are left out.
func (s *Store) Stats(ctx context.Context, sc query.Scope, f query.StatsFilter) ([]query.Stat, error) {
	var l list
	oneApp := l.scope(sc, f.Application)
	if f.Session != nil {
		l.add("session_id = ?", *f.Session)
	}
	if f.Category != "" {
		l.add("category = ?", f.Category)
	}
	if f.Name != "" {
		l.add("name = ?", f.Name)
	}
	l.between(`"timestamp"`, &f.From, &f.To)
	source := "events e" + l.whereClause()
	if !oneApp && f.Session == nil {
		l.where = append([]string{"app_id = apps.id"}, l.where...)
		source = `apps CROSS JOIN LATERAL (SELECT "timestamp", category, name FROM events` + l.whereClause() + `) e`
	}
	category, name := "NULL::text", "NULL::text"
	if f.ByCategory {
		category = "e.category"
	}
	if f.ByName {
		name = "e.name"
	}
	// date_bin from a UTC midnight: plain arithmetic, cheaper per row than
	// date_trunc in a time zone, and the same buckets for minute/hour/day.
	// No ORDER BY: Postgres cannot estimate the number of buckets and
	// assumes one group per row, so with the order asked for it sorts every
	// row (an external sort of 300k rows for a day of all applications)
	// instead of hashing into the few hundred groups; the groups are sorted
	// here. LIMIT only detects too many of them.
	q := fmt.Sprintf(`SELECT date_bin('1 %s', e."timestamp", TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
	%s AS category, %s AS name, count(*) AS count
FROM %s
GROUP BY 1, 2, 3 LIMIT %s`, f.Bucket, category, name, source, l.param(query.MaxStats+1))
	if !oneApp && f.Session == nil {
		q = appsCTE + "\n" + q
	}
	rows, err := s.statRows(ctx, q, l.args)
	if err != nil {
		return nil, err
	}
	if len(rows) > query.MaxStats {
		return nil, query.ErrTooManyStats
	}
	slices.SortFunc(rows, func(a, b statRow) int {
		if n := a.Bucket.Compare(b.Bucket); n != 0 {
			return n
		}
		if n := strings.Compare(a.Category.String, b.Category.String); n != 0 {
			return n
		}
		return strings.Compare(a.Name.String, b.Name.String)
	})
	out := make([]query.Stat, len(rows))
	for i, r := range rows {
		out[i] = query.Stat{Bucket: apitime.New(r.Bucket), Count: r.Count}
		if r.Category.Valid {
			out[i].Category = &r.Category.String
		}
		if r.Name.Valid {
			out[i].Name = &r.Name.String
		}
	}
	return out, nil
}

// Event implements query.Reader.
func (s *Store) Event(ctx context.Context, sc query.Scope, id uuid.UUID) (query.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var r eventRow
	err := s.db.GetContext(ctx, &r, `SELECT `+eventCols+` FROM events WHERE id = $1 AND ($2::uuid IS NULL OR app_id = $2)`, id, scopeArg(sc))
	return r.toEvent(), notFound(err)
}

func toSession(r sessions.Row) query.Session {
	return query.Session{ID: r.ID, ApplicationID: r.AppID, CreatedAt: apitime.New(r.CreatedAt), RegisteredAt: apitime.Null(r.RegisteredAt),
		FirstEventAt: apitime.Null(r.FirstEventAt), LastEventAt: apitime.Null(r.LastEventAt), EventCount: r.EventCount}
}

// Sessions implements query.Reader, newest first, through pkg/sessions.
func (s *Store) Sessions(ctx context.Context, sc query.Scope, f query.SessionFilter, p paging.Request) ([]query.Session, paging.Links, error) {
	w, err := openWindow("sessions", query.Newest, p)
	if err != nil {
		return nil, paging.Links{}, err
	}
	q := sessions.PageQuery{From: f.From, To: f.To, Ascending: w.order == query.Oldest, Limit: w.limit + 1}
	if sc.AppID != uuid.Nil {
		q.Apps = append(q.Apps, sc.AppID)
	}
	if f.Application != nil && *f.Application != sc.AppID {
		q.Apps = append(q.Apps, *f.Application)
	}
	if w.after != nil {
		q.After = &sessions.Position{CreatedAt: w.after.T, ID: w.after.ID}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.sessions.Page(ctx, q)
	if err != nil {
		return nil, paging.Links{}, fmt.Errorf("query: %w", err)
	}
	return pageOf(w, rows, func(r sessions.Row) (query.Session, error) { return toSession(r), nil },
		func(r sessions.Row) pos { return pos{r.CreatedAt, r.ID} })
}

// Session implements query.Reader, through pkg/sessions.
func (s *Store) Session(ctx context.Context, sc query.Scope, id uuid.UUID) (query.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var app *uuid.UUID
	if sc.AppID != uuid.Nil {
		app = &sc.AppID
	}
	r, err := s.sessions.Get(ctx, id, app)
	if errors.Is(err, sessions.ErrNotFound) {
		return query.Session{}, query.ErrNotFound
	}
	if err != nil {
		return query.Session{}, fmt.Errorf("query: %w", err)
	}
	return toSession(r), nil
}

const errorCols = `id, app_id, session_id, stage, reasons, payload, received_at, detected_at, ` + errorExtraCols

type errorRow struct {
	ID         uuid.UUID     `db:"id"`
	AppID      uuid.UUID     `db:"app_id"`
	SessionID  uuid.NullUUID `db:"session_id"`
	Stage      string        `db:"stage"`
	Reasons    []byte        `db:"reasons"`
	Payload    []byte        `db:"payload"`
	ReceivedAt time.Time     `db:"received_at"`
	DetectedAt time.Time     `db:"detected_at"`
	errorExtra               // type, schema version, replay lineage (errors.go)
}

func (r errorRow) toError() (query.Error, error) {
	e := query.Error{ID: r.ID, ApplicationID: r.AppID, Stage: r.Stage, Payload: contract.NewPayload(r.Payload),
		ReceivedAt: apitime.New(r.ReceivedAt), DetectedAt: apitime.New(r.DetectedAt)}
	if r.SessionID.Valid {
		e.SessionID = &r.SessionID.UUID
	}
	r.errorExtra.fill(&e)
	if err := json.Unmarshal(r.Reasons, &e.Reasons); err != nil {
		return query.Error{}, fmt.Errorf("decode reasons of error %s: %w", r.ID, err)
	}
	return e, nil
}

// Errors implements query.Reader, newest first.
func (s *Store) Errors(ctx context.Context, sc query.Scope, f query.ErrorFilter, p paging.Request) ([]query.Error, paging.Links, error) {
	w, err := openWindow("errors", query.Newest, p)
	if err != nil {
		return nil, paging.Links{}, err
	}
	var l list
	l.errorFilter(sc, f) // errors.go
	q, args := l.page(errorCols, "errors", "detected_at", w)
	var rows []errorRow
	if err := s.selectRows(ctx, &rows, q, args...); err != nil {
		return nil, paging.Links{}, err
	}
	return pageOf(w, rows, errorRow.toError, func(r errorRow) pos { return pos{r.DetectedAt, r.ID} })
}

// Error implements query.Reader and query.Replays.
func (s *Store) Error(ctx context.Context, sc query.Scope, id uuid.UUID) (query.Error, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var r errorRow
	err := s.db.GetContext(ctx, &r, `SELECT `+errorCols+` FROM errors WHERE id = $1 AND ($2::uuid IS NULL OR app_id = $2)`, id, scopeArg(sc))
	if err != nil {
		return query.Error{}, notFound(err)
	}
	return r.toError()
}

// statRows runs a stats query without parallel workers. The group count
// is overestimated (see Stats), so a parallel plan sorts every row in each
// worker and merges; serially Postgres hashes into the few real groups,
// which measured twice as fast on 2 cores, and workers idle-waiting for a
// busy CPU only add to the latency an API request sees.
func (s *Store) statRows(ctx context.Context, q string, args []any) ([]statRow, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	var rows []statRow
	if _, err := tx.ExecContext(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	if err := tx.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return rows, nil
}

func (s *Store) selectRows(ctx context.Context, dst any, q string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.db.SelectContext(ctx, dst, q, args...); err != nil {
		return fmt.Errorf("query: %w", err)
	}
	return nil
}

func scopeArg(sc query.Scope) any {
	if sc.AppID == uuid.Nil {
		return nil
	}
	return sc.AppID
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return query.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	return nil
}

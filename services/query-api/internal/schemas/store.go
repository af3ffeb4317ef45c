// Package schemas is query-api's side of the per-type JSON Schemas: their
// storage in Postgres (table event_schemas), the loading of EYE_SCHEMA_DIR
// at start, and their publication on the compacted schemas topic that the
// validators follow (pkg/schema). Postgres is the source of truth; the topic
// is how validators learn of a version within seconds.
package schemas

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/schema"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// Errors of the store.
var (
	// ErrNotFound: no such schema version.
	ErrNotFound = errors.New("no such schema version")
	// ErrConflict: a version exists with other content; versions are
	// immutable.
	ErrConflict = errors.New("schema version exists with different content")
)

// Record is a stored schema version.
type Record struct {
	Category string `json:"category" example:"page interaction"`
	Name     string `json:"name" example:"pageview"`
	Version  int    `json:"version" example:"1"`
	// Schema is the JSON Schema document, as Postgres's jsonb gives it back
	// (same meaning, keys possibly reordered).
	Schema    json.RawMessage `json:"schema"`
	CreatedAt apitime.Time    `json:"created_at"`
	// CreatedBy is the id of the admin key that added it; null for a
	// version loaded from EYE_SCHEMA_DIR.
	CreatedBy *uuid.UUID `json:"created_by" extensions:"x-nullable"`
	// PublishedAt is when the schemas topic acknowledged it, i.e. when
	// validators could start applying it; null until then (query-api
	// retries every few seconds).
	PublishedAt *apitime.Time `json:"published_at" extensions:"x-nullable"`
}

// Filter narrows List; empty fields match everything.
type Filter struct {
	Category string
	Name     string
}

// Store keeps schema versions in Postgres.
type Store struct {
	db      *sqlx.DB
	timeout time.Duration
}

// NewStore returns a store on db whose statements run under timeout.
func NewStore(db *sqlx.DB, timeout time.Duration) (*Store, error) {
	if db == nil || timeout <= 0 {
		return nil, errors.New("schemas: need a db and a positive timeout")
	}
	return &Store{db: db, timeout: timeout}, nil
}

const cols = `category, name, version, schema, created_at, created_by, published_at`

type row struct {
	Category    string        `db:"category"`
	Name        string        `db:"name"`
	Version     int           `db:"version"`
	Schema      []byte        `db:"schema"`
	CreatedAt   time.Time     `db:"created_at"`
	CreatedBy   uuid.NullUUID `db:"created_by"`
	PublishedAt sql.NullTime  `db:"published_at"`
}

func (r row) record() Record {
	rec := Record{Category: r.Category, Name: r.Name, Version: r.Version, Schema: r.Schema,
		CreatedAt: apitime.New(r.CreatedAt), PublishedAt: apitime.Null(r.PublishedAt)}
	if r.CreatedBy.Valid {
		rec.CreatedBy = &r.CreatedBy.UUID
	}
	return rec
}

// lockType serialises the writers of one type's versions until the
// transaction ends (a hash collision only serialises two types).
const lockType = `SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 4))`

// Add compiles src and stores it as the next version of category/name
// (1 for a new type), guarded by g (see Guard). A schema that does not
// compile is refused with an error wrapping schema.ErrInvalid and carrying
// the compiler's message; one that accepts no event with
// schema.ErrAcceptsNothing; one that rejects some of the checked events
// with ErrBreaksEvents (unless g.Force), the Impact saying which. A dry run
// returns the Impact and stores nothing (a zero Record).
func (s *Store) Add(ctx context.Context, category, name string, src []byte, by uuid.UUID, g Guard) (Record, Impact, error) {
	sc, err := schema.Compile(category, name, 1, src)
	if err != nil {
		return Record{}, Impact{}, err
	}
	if err := schema.CheckAcceptsSomething(src); err != nil {
		return Record{}, Impact{}, err
	}
	impact := Impact{Category: category, Name: name, Samples: []Failure{}}
	if g.Check > 0 {
		if impact, err = s.impact(ctx, sc, g.Check); err != nil {
			return Record{}, Impact{}, err
		}
	}
	if g.DryRun {
		return Record{}, impact, nil
	}
	if impact.Failing > 0 && !g.Force {
		return Record{}, impact, fmt.Errorf("%w: %d of the last %d", ErrBreaksEvents, impact.Failing, impact.Checked)
	}
	const insert = `
		INSERT INTO event_schemas (category, name, version, schema, created_by)
		SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3::jsonb, $4
		FROM event_schemas WHERE category = $1 AND name = $2
		RETURNING ` + cols
	var r row
	err = s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, lockType, category, name); err != nil {
			return err
		}
		return tx.GetContext(ctx, &r, insert, category, name, string(src), by)
	})
	if err != nil {
		return Record{}, impact, fmt.Errorf("add schema: %w", err)
	}
	return r.record(), impact, nil
}

// Put stores a compiled version as it is, unless that version exists: then
// it reports whether it was inserted, or ErrConflict when the stored
// content differs (as JSON values: whitespace and key order do not count).
func (s *Store) Put(ctx context.Context, sc *schema.Schema) (inserted bool, err error) {
	const (
		insert = `
			INSERT INTO event_schemas (category, name, version, schema) VALUES ($1, $2, $3, $4::jsonb)
			ON CONFLICT (category, name, version) DO NOTHING`
		same = `SELECT schema = $4::jsonb FROM event_schemas WHERE category = $1 AND name = $2 AND version = $3`
	)
	err = s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, lockType, sc.Category, sc.Name); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, insert, sc.Category, sc.Name, sc.Version, string(sc.Source))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			inserted = n == 1
			return err
		}
		var equal bool
		if err := tx.GetContext(ctx, &equal, same, sc.Category, sc.Name, sc.Version, string(sc.Source)); err != nil {
			return err
		}
		if !equal {
			return ErrConflict
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("put schema %s: %w", sc.Ref(), err)
	}
	return inserted, nil
}

// Get returns one version, or ErrNotFound.
func (s *Store) Get(ctx context.Context, category, name string, version int) (Record, error) {
	const q = `SELECT ` + cols + ` FROM event_schemas WHERE category = $1 AND name = $2 AND version = $3`
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var r row
	err := s.db.GetContext(ctx, &r, q, category, name, version)
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("get schema: %w", err)
	}
	return r.record(), nil
}

// pos is a version's position in the list.
type pos struct {
	C string `json:"c"`
	N string `json:"n"`
	V int    `json:"v"`
}

// List lists versions by category, name and version, a page at a time.
func (s *Store) List(ctx context.Context, f Filter, p paging.Request) ([]Record, paging.Links, error) {
	const list = "schemas"
	cur, err := paging.Decode[pos](list, p.Cursor)
	if err != nil {
		return nil, paging.Links{}, err
	}
	// $3: the first page; otherwise the versions after the position, or
	// before it read backwards.
	q := `
		SELECT ` + cols + ` FROM event_schemas
		WHERE ($1 = '' OR category = $1) AND ($2 = '' OR name = $2)
		  AND ($3 OR (category, name, version) > ($4, $5, $6))
		ORDER BY category, name, version LIMIT $7`
	var after pos
	if cur != nil {
		after = cur.Pos
		if cur.Reverse {
			q = `
		SELECT ` + cols + ` FROM event_schemas
		WHERE ($1 = '' OR category = $1) AND ($2 = '' OR name = $2)
		  AND ($3 OR (category, name, version) < ($4, $5, $6))
		ORDER BY category DESC, name DESC, version DESC LIMIT $7`
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	limit := p.Size()
	var rows []row
	if err := s.db.SelectContext(ctx, &rows, q, f.Category, f.Name, cur == nil, after.C, after.N, after.V, limit+1); err != nil {
		return nil, paging.Links{}, fmt.Errorf("list schemas: %w", err)
	}
	rows, links := paging.Cut(list, rows, limit, cur, func(r row) pos { return pos{r.Category, r.Name, r.Version} })
	recs := make([]Record, len(rows))
	for i, r := range rows {
		recs[i] = r.record()
	}
	return recs, links, nil
}

// Unpublished returns up to limit versions the schemas topic has not
// acknowledged yet, by type and version.
func (s *Store) Unpublished(ctx context.Context, limit int) ([]Record, error) {
	const q = `
		SELECT ` + cols + ` FROM event_schemas
		WHERE published_at IS NULL
		ORDER BY category, name, version LIMIT $1`
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var rows []row
	if err := s.db.SelectContext(ctx, &rows, q, limit); err != nil {
		return nil, fmt.Errorf("unpublished schemas: %w", err)
	}
	out := make([]Record, len(rows))
	for i, r := range rows {
		out[i] = r.record()
	}
	return out, nil
}

// MarkPublished records that the topic acknowledged recs (a version keeps
// the time of its first acknowledgement).
func (s *Store) MarkPublished(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	cats, names, versions := make([]string, len(recs)), make([]string, len(recs)), make([]int64, len(recs))
	for i, r := range recs {
		cats[i], names[i], versions[i] = r.Category, r.Name, int64(r.Version)
	}
	const q = `
		UPDATE event_schemas s SET published_at = now()
		FROM unnest($1::text[], $2::text[], $3::int[]) AS p(category, name, version)
		WHERE s.category = p.category AND s.name = p.name AND s.version = p.version AND s.published_at IS NULL`
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, q, pq.Array(cats), pq.Array(names), pq.Array(versions)); err != nil {
		return fmt.Errorf("mark schemas published: %w", err)
	}
	return nil
}

// tx runs f in a transaction under the store's timeout.
func (s *Store) tx(ctx context.Context, f func(context.Context, *sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(ctx, tx); err != nil {
		_ = tx.Rollback() // the error that matters is f's
		return err
	}
	return tx.Commit()
}

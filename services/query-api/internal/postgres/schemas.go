package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/schema"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/schemas"
)

// Schemas keeps schema versions in Postgres (table event_schemas). It
// implements schemas.Store.
type Schemas struct {
	db      *sqlx.DB
	timeout time.Duration
}

var _ schemas.Store = (*Schemas)(nil)

// NewSchemas returns a Schemas on db whose statements run under timeout.
func NewSchemas(db *sqlx.DB, timeout time.Duration) (*Schemas, error) {
	if db == nil || timeout <= 0 {
		return nil, errors.New("postgres: schemas need a db and a positive timeout")
	}
	return &Schemas{db: db, timeout: timeout}, nil
}

const schemaCols = `category, name, version, schema, created_at, created_by, published_at`

type schemaRow struct {
	Category    string        `db:"category"`
	Name        string        `db:"name"`
	Version     int           `db:"version"`
	Schema      []byte        `db:"schema"`
	CreatedAt   time.Time     `db:"created_at"`
	CreatedBy   uuid.NullUUID `db:"created_by"`
	PublishedAt sql.NullTime  `db:"published_at"`
}

func (r schemaRow) record() schemas.Record {
	rec := schemas.Record{Category: r.Category, Name: r.Name, Version: r.Version, Schema: r.Schema,
		CreatedAt: apitime.New(r.CreatedAt), PublishedAt: apitime.Null(r.PublishedAt)}
	if r.CreatedBy.Valid {
		rec.CreatedBy = &r.CreatedBy.UUID
	}
	return rec
}

// lockType serialises the writers of one type's versions until the
// transaction ends (a hash collision only serialises two types).
const lockType = `SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 4))`

// Insert implements schemas.Store: the type's writers are serialised by
// an advisory lock.
func (s *Schemas) Insert(ctx context.Context, category, name string, src []byte, by uuid.UUID) (schemas.Record, error) {
	const insert = `
		INSERT INTO event_schemas (category, name, version, schema, created_by)
		SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3::jsonb, $4
		FROM event_schemas WHERE category = $1 AND name = $2
		RETURNING ` + schemaCols
	var r schemaRow
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, lockType, category, name); err != nil {
			return err
		}
		return tx.GetContext(ctx, &r, insert, category, name, string(src), by)
	})
	if err != nil {
		return schemas.Record{}, fmt.Errorf("add schema: %w", err)
	}
	return r.record(), nil
}

// RecentEvents implements schemas.Store.
func (s *Schemas) RecentEvents(ctx context.Context, category, name string, n int) ([]schemas.StoredEvent, error) {
	const q = `
		SELECT id, data FROM events WHERE category = $1 AND name = $2
		ORDER BY "timestamp" DESC, id DESC LIMIT $3`
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var rows []struct {
		ID   uuid.UUID `db:"id"`
		Data []byte    `db:"data"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, category, name, n); err != nil {
		return nil, err
	}
	out := make([]schemas.StoredEvent, len(rows))
	for i, r := range rows {
		out[i] = schemas.StoredEvent{ID: r.ID, Data: r.Data}
	}
	return out, nil
}

// Put stores a compiled version as it is, unless that version exists: then
// it reports whether it was inserted, or schemas.ErrConflict when the stored
// content differs (as JSON values: whitespace and key order do not count).
func (s *Schemas) Put(ctx context.Context, sc *schema.Schema) (inserted bool, err error) {
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
			return schemas.ErrConflict
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("put schema %s: %w", sc.Ref(), err)
	}
	return inserted, nil
}

// Get returns one version, or schemas.ErrNotFound.
func (s *Schemas) Get(ctx context.Context, category, name string, version int) (schemas.Record, error) {
	const q = `SELECT ` + schemaCols + ` FROM event_schemas WHERE category = $1 AND name = $2 AND version = $3`
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var r schemaRow
	err := s.db.GetContext(ctx, &r, q, category, name, version)
	if errors.Is(err, sql.ErrNoRows) {
		return schemas.Record{}, schemas.ErrNotFound
	}
	if err != nil {
		return schemas.Record{}, fmt.Errorf("get schema: %w", err)
	}
	return r.record(), nil
}

// schemaPos is a version's position in the list.
type schemaPos struct {
	C string `json:"c"`
	N string `json:"n"`
	V int    `json:"v"`
}

// List lists versions by category, name and version, a page at a time.
func (s *Schemas) List(ctx context.Context, f schemas.Filter, p paging.Request) ([]schemas.Record, paging.Links, error) {
	const list = "schemas"
	cur, err := paging.Decode[schemaPos](list, p.Cursor)
	if err != nil {
		return nil, paging.Links{}, err
	}
	// $3: the first page; otherwise the versions after the position, or
	// before it read backwards.
	q := `
		SELECT ` + schemaCols + ` FROM event_schemas
		WHERE ($1 = '' OR category = $1) AND ($2 = '' OR name = $2)
		  AND ($3 OR (category, name, version) > ($4, $5, $6))
		ORDER BY category, name, version LIMIT $7`
	var after schemaPos
	if cur != nil {
		after = cur.Pos
		if cur.Reverse {
			q = `
		SELECT ` + schemaCols + ` FROM event_schemas
		WHERE ($1 = '' OR category = $1) AND ($2 = '' OR name = $2)
		  AND ($3 OR (category, name, version) < ($4, $5, $6))
		ORDER BY category DESC, name DESC, version DESC LIMIT $7`
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	limit := p.Size()
	var rows []schemaRow
	if err := s.db.SelectContext(ctx, &rows, q, f.Category, f.Name, cur == nil, after.C, after.N, after.V, limit+1); err != nil {
		return nil, paging.Links{}, fmt.Errorf("list schemas: %w", err)
	}
	rows, links := paging.Cut(list, rows, limit, cur, func(r schemaRow) schemaPos { return schemaPos{r.Category, r.Name, r.Version} })
	recs := make([]schemas.Record, len(rows))
	for i, r := range rows {
		recs[i] = r.record()
	}
	return recs, links, nil
}

// Unpublished returns up to limit versions the schemas topic has not
// acknowledged yet, by type and version.
func (s *Schemas) Unpublished(ctx context.Context, limit int) ([]schemas.Record, error) {
	const q = `
		SELECT ` + schemaCols + ` FROM event_schemas
		WHERE published_at IS NULL
		ORDER BY category, name, version LIMIT $1`
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var rows []schemaRow
	if err := s.db.SelectContext(ctx, &rows, q, limit); err != nil {
		return nil, fmt.Errorf("unpublished schemas: %w", err)
	}
	out := make([]schemas.Record, len(rows))
	for i, r := range rows {
		out[i] = r.record()
	}
	return out, nil
}

// MarkPublished records that the topic acknowledged recs (a version keeps
// the time of its first acknowledgement).
func (s *Schemas) MarkPublished(ctx context.Context, recs []schemas.Record) error {
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
func (s *Schemas) tx(ctx context.Context, f func(context.Context, *sqlx.Tx) error) error {
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

// Package schemas is query-api's side of the per-type JSON Schemas: adding
// versions under the guard of the type's stored events, the loading of
// EYE_SCHEMA_DIR at start, and their publication on the compacted schemas
// topic that the validators follow (pkg/schema). Storage (Postgres, table
// event_schemas, in package postgres) is the source of truth; the topic is
// how validators learn of a version within seconds.
package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/schema"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// Errors of schema storage.
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

// StoredEvent is a stored event as a guard checks it.
type StoredEvent struct {
	ID   uuid.UUID
	Data []byte
}

// Store keeps schema versions.
type Store interface {
	// Insert stores src as the next version of category/name (1 for a new
	// type), added by admin key by, serialised with the type's other
	// writers.
	Insert(ctx context.Context, category, name string, src []byte, by uuid.UUID) (Record, error)
	// Put stores a compiled version as it is, unless that version exists:
	// then it reports whether it was inserted, or ErrConflict when the
	// stored content differs (as JSON values).
	Put(ctx context.Context, sc *schema.Schema) (inserted bool, err error)
	// Get returns one version, or ErrNotFound.
	Get(ctx context.Context, category, name string, version int) (Record, error)
	// List lists versions by category, name and version, a page at a time.
	List(ctx context.Context, f Filter, p paging.Request) ([]Record, paging.Links, error)
	// Unpublished returns up to limit versions the schemas topic has not
	// acknowledged yet, by type and version.
	Unpublished(ctx context.Context, limit int) ([]Record, error)
	// MarkPublished records that the topic acknowledged recs (a version
	// keeps the time of its first acknowledgement).
	MarkPublished(ctx context.Context, recs []Record) error
	// RecentEvents returns the type's n most recent stored events (by
	// timestamp, then id), newest first.
	RecentEvents(ctx context.Context, category, name string, n int) ([]StoredEvent, error)
}

// Service adds, reads and lists schema versions over a Store.
type Service struct {
	store Store
}

// NewService returns a Service on store.
func NewService(store Store) (*Service, error) {
	if store == nil {
		return nil, errors.New("schemas: nil store")
	}
	return &Service{store: store}, nil
}

// Add compiles src and stores it as the next version of category/name
// (1 for a new type), guarded by g (see Guard). A schema that does not
// compile is refused with an error wrapping schema.ErrInvalid and carrying
// the compiler's message; one that accepts no event with
// schema.ErrAcceptsNothing; one that rejects some of the checked events
// with ErrBreaksEvents (unless g.Force), the Impact saying which. A dry run
// returns the Impact and stores nothing (a zero Record).
func (s *Service) Add(ctx context.Context, category, name string, src []byte, by uuid.UUID, g Guard) (Record, Impact, error) {
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
	rec, err := s.store.Insert(ctx, category, name, src, by)
	if err != nil {
		return Record{}, impact, err
	}
	return rec, impact, nil
}

// Get returns one version, or ErrNotFound.
func (s *Service) Get(ctx context.Context, category, name string, version int) (Record, error) {
	return s.store.Get(ctx, category, name, version)
}

// List lists versions by category, name and version, a page at a time.
func (s *Service) List(ctx context.Context, f Filter, p paging.Request) ([]Record, paging.Links, error) {
	return s.store.List(ctx, f, p)
}

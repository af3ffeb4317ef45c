package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// Reader reads stored events, sessions, error records and audits, each
// within what a Scope may see (ErrNotFound outside it). Lists are keyset
// paginated by paging.Request.
type Reader interface {
	Events(ctx context.Context, sc Scope, f EventFilter, p paging.Request) ([]Event, paging.Links, error)
	Event(ctx context.Context, sc Scope, id uuid.UUID) (Event, error)
	Sessions(ctx context.Context, sc Scope, f SessionFilter, p paging.Request) ([]Session, paging.Links, error)
	Session(ctx context.Context, sc Scope, id uuid.UUID) (Session, error)
	// Stats counts per bucket and group, ordered by bucket, category, name;
	// f's range is already checked. More than MaxStats counts is
	// ErrTooManyStats.
	Stats(ctx context.Context, sc Scope, f StatsFilter) ([]Stat, error)
	Errors(ctx context.Context, sc Scope, f ErrorFilter, p paging.Request) ([]Error, paging.Links, error)
	Error(ctx context.Context, sc Scope, id uuid.UUID) (Error, error)
	// Summary groups error records by the dimensions in by (checked, not
	// empty), most frequent first, at most MaxSummaryGroups (then
	// Truncated).
	Summary(ctx context.Context, sc Scope, f ErrorFilter, by []string) (ErrorSummary, error)
	// Audit lists the changes of event id, oldest first, unscoped.
	Audit(ctx context.Context, id uuid.UUID, p paging.Request) ([]AuditEntry, paging.Links, error)
}

// Change is what an edit sets on an event.
type Change struct {
	Category  string
	Name      string
	Data      []byte
	Timestamp time.Time
}

// Editor changes events one at a time under a lock on the event, so
// concurrent changes apply one after the other. The check or decide
// function sees the event as locked; its error aborts the change and is
// returned as it is. A change is audited as by (with action) and the
// event's session aggregates follow it, in the same transaction.
type Editor interface {
	// Edit locks event id (visible in sc), asks decide for the change and
	// stores it.
	Edit(ctx context.Context, sc Scope, by Actor, action string, id uuid.UUID, decide func(cur Event) (Change, error)) (Event, error)
	// Delete locks event id (visible in sc), asks check, and deletes it.
	Delete(ctx context.Context, sc Scope, by Actor, id uuid.UUID, check func(cur Event) error) error
}

// Store is the storage the query domain needs.
type Store interface {
	Reader
	Editor
}

// Service is the query domain over a Store: reads with their rules, and
// edits validated by the ingestion rules.
type Service struct {
	store Store
	rules event.Rules
	now   func() time.Time
}

// NewService returns a Service on store that validates edits with rules.
func NewService(store Store, rules event.Rules) (*Service, error) {
	if store == nil {
		return nil, errors.New("query: nil store")
	}
	return &Service{store: store, rules: rules, now: time.Now}, nil
}

// Events lists events matching f, one page at a time (newest first unless
// f says otherwise).
func (s *Service) Events(ctx context.Context, sc Scope, f EventFilter, p paging.Request) ([]Event, paging.Links, error) {
	if f.Order == "" {
		f.Order = Newest
	}
	return s.store.Events(ctx, sc, f, p)
}

// Event returns one event visible in sc.
func (s *Service) Event(ctx context.Context, sc Scope, id uuid.UUID) (Event, error) {
	return s.store.Event(ctx, sc, id)
}

// Timeline lists a session's events in the order they happened (oldest
// first), one page at a time. A session sc cannot see is ErrNotFound; a
// session without events is an empty first page.
func (s *Service) Timeline(ctx context.Context, sc Scope, session uuid.UUID, p paging.Request) ([]Event, paging.Links, error) {
	list, links, err := s.store.Events(ctx, sc, EventFilter{Session: &session, Order: Oldest}, p)
	if err != nil || len(list) > 0 || p.Cursor != "" {
		return list, links, err
	}
	if _, err := s.store.Session(ctx, sc, session); err != nil {
		return nil, paging.Links{}, err
	}
	return list, links, nil
}

// Sessions lists sessions, newest first.
func (s *Service) Sessions(ctx context.Context, sc Scope, f SessionFilter, p paging.Request) ([]Session, paging.Links, error) {
	return s.store.Sessions(ctx, sc, f, p)
}

// Session returns one session visible in sc.
func (s *Service) Session(ctx context.Context, sc Scope, id uuid.UUID) (Session, error) {
	return s.store.Session(ctx, sc, id)
}

// Stats counts the events matching f per time bucket and group, ordered by
// bucket, category, name (byte order). Buckets without events are left
// out. An unknown bucket or a range ending before it starts is
// ErrBadRange, a range of more than MaxBuckets buckets ErrTooManyBuckets.
func (s *Service) Stats(ctx context.Context, sc Scope, f StatsFilter) ([]Stat, error) {
	width := f.Bucket.Duration()
	if width == 0 || f.To.Before(f.From) {
		return nil, ErrBadRange
	}
	// time.Truncate counts from the zero time, a UTC midnight.
	if f.To.Truncate(width).Sub(f.From.Truncate(width))/width+1 > MaxBuckets {
		return nil, ErrTooManyBuckets
	}
	return s.store.Stats(ctx, sc, f)
}

// Errors lists error records, newest first.
func (s *Service) Errors(ctx context.Context, sc Scope, f ErrorFilter, p paging.Request) ([]Error, paging.Links, error) {
	return s.store.Errors(ctx, sc, f, p)
}

// Error returns one error record visible in sc.
func (s *Service) Error(ctx context.Context, sc Scope, id uuid.UUID) (Error, error) {
	return s.store.Error(ctx, sc, id)
}

// Summary groups the error records matching f by the dimensions in by
// (reason when empty) with their count and first and last detection, most
// frequent first. An unknown or repeated dimension is ErrBadGrouping.
func (s *Service) Summary(ctx context.Context, sc Scope, f ErrorFilter, by []string) (ErrorSummary, error) {
	if len(by) == 0 {
		by = []string{ByReason}
	}
	grouped := map[string]bool{}
	for _, d := range by {
		if !slices.Contains(SummaryDimensions, d) || grouped[d] {
			return ErrorSummary{}, fmt.Errorf("%w: %q (one of %s, each once)", ErrBadGrouping, d, strings.Join(SummaryDimensions, ", "))
		}
		grouped[d] = true
	}
	return s.store.Summary(ctx, sc, f, by)
}

// Audit lists the changes made to event id, oldest first, one page at a
// time; it is meant for admins and is not scoped. An event that neither
// exists nor has an audit is ErrNotFound.
func (s *Service) Audit(ctx context.Context, id uuid.UUID, p paging.Request) ([]AuditEntry, paging.Links, error) {
	list, links, err := s.store.Audit(ctx, id, p)
	if err != nil || len(list) > 0 || p.Cursor != "" {
		return list, links, err
	}
	if _, err := s.store.Event(ctx, Scope{}, id); err != nil {
		return nil, paging.Links{}, err
	}
	return list, links, nil
}

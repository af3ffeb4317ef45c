// Package postgres records session registrations in Postgres for the
// gateway, synchronously, so an application that registered a session can
// send its events at once, strict sessions included. The SQL is
// pkg/sessions', which owns the sessions table.
package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/sessions"
	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
)

// Store is a Postgres session store.
type Store struct {
	sessions *sessions.Store
}

var _ ingest.Sessions = (*Store)(nil)

// New returns a Store on db.
func New(db *sqlx.DB) (*Store, error) {
	s, err := sessions.New(db)
	if err != nil {
		return nil, err
	}
	return &Store{sessions: s}, nil
}

// Register implements ingest.Sessions.
func (s *Store) Register(ctx context.Context, app, id uuid.UUID, at time.Time) error {
	err := s.sessions.Register(ctx, app, id, at)
	if errors.Is(err, sessions.ErrOtherApplication) {
		return ingest.ErrSessionConflict
	}
	return err
}

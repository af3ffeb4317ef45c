// Package sessionstore records session registrations in Postgres for the
// gateway, synchronously, so an application that registered a session can
// send its events at once, strict sessions included.
package sessionstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
)

// Store is a Postgres session store.
type Store struct {
	db *sqlx.DB
}

var _ ingest.Sessions = (*Store)(nil)

// New returns a Store on db.
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("sessionstore: nil db")
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

// Register implements ingest.Sessions.
func (s *Store) Register(ctx context.Context, app, id uuid.UUID, at time.Time) error {
	var got uuid.UUID
	err := s.db.GetContext(ctx, &got, register, id, app, at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ingest.ErrSessionConflict
	case err != nil:
		return fmt.Errorf("register session: %w", err)
	}
	return nil
}

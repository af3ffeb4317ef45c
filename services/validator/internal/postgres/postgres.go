// Package postgres is the validator's storage: it answers the one thing
// the validator asks Postgres, an application's strict-types setting,
// through pkg/auth, where application settings are read.
package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/services/validator/internal/validate"
)

// Store reads application settings.
type Store struct {
	db *sqlx.DB
}

var _ validate.StrictTypes = (*Store)(nil).StrictTypes

// New returns a Store on db.
func New(db *sqlx.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("postgres: nil db")
	}
	return &Store{db: db}, nil
}

// StrictTypes implements validate.StrictTypes: an unknown application does
// not have strict types.
func (s *Store) StrictTypes(ctx context.Context, app uuid.UUID) (bool, error) {
	set, err := auth.ReadSettings(ctx, s.db, app)
	if err != nil {
		return false, err
	}
	return set[app].StrictTypes, nil
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/services/query-api/internal/admin"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// Admin is the administration's storage: applications and API keys,
// whose SQL is pkg/auth's (the tables' owner). It implements admin.Store.
type Admin struct {
	db      *sqlx.DB
	timeout time.Duration
}

var _ admin.Store = (*Admin)(nil)

// NewAdmin returns an Admin on db; every statement or transaction runs
// under timeout.
func NewAdmin(db *sqlx.DB, timeout time.Duration) (*Admin, error) {
	if db == nil {
		return nil, errors.New("postgres: nil db")
	}
	if timeout <= 0 {
		return nil, errors.New("postgres: timeout must be positive")
	}
	return &Admin{db: db, timeout: timeout}, nil
}

func toApplication(a auth.Application) admin.Application {
	origins := a.Settings.AllowedOrigins
	if origins == nil {
		origins = []string{}
	}
	return admin.Application{
		ID:   a.ID,
		Name: a.Name,
		Settings: admin.Settings{AllowedOrigins: origins, RateLimit: a.Settings.RateLimit,
			RateBurst: a.Settings.RateBurst, StrictSessions: a.Settings.StrictSessions, StrictTypes: a.Settings.StrictTypes},
		CreatedAt:  apitime.New(a.CreatedAt),
		DisabledAt: apitime.Null(a.DisabledAt),
	}
}

func appSettings(s admin.Settings) auth.AppSettings {
	return auth.AppSettings{AllowedOrigins: s.AllowedOrigins, RateLimit: s.RateLimit, RateBurst: s.RateBurst,
		StrictSessions: s.StrictSessions, StrictTypes: s.StrictTypes}
}

func toKey(k auth.KeyRecord) admin.Key {
	return admin.Key{ID: k.ID, ApplicationID: k.AppID, Prefix: k.Prefix, Label: k.Label, Scopes: k.Scopes,
		CreatedAt: apitime.New(k.CreatedAt), ExpiresAt: apitime.Null(k.ExpiresAt), RevokedAt: apitime.Null(k.RevokedAt)}
}

// appResult converts what pkg/auth returned for an application.
func appResult(a auth.Application, err error) (admin.Application, error) {
	if err != nil {
		return admin.Application{}, notFoundAdmin(err)
	}
	return toApplication(a), nil
}

// notFoundAdmin turns pkg/auth's "no such application or key" into
// admin.ErrNotFound.
func notFoundAdmin(err error) error {
	if errors.Is(err, auth.ErrNoApplication) || errors.Is(err, auth.ErrKeyNotFound) {
		return admin.ErrNotFound
	}
	return err
}

// CreateApplication implements admin.Store.
func (s *Admin) CreateApplication(ctx context.Context, id uuid.UUID, name string, set admin.Settings) (admin.Application, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return appResult(auth.CreateApplication(ctx, s.db, id, name, appSettings(set)))
}

// Application implements admin.Store.
func (s *Admin) Application(ctx context.Context, id uuid.UUID) (admin.Application, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return appResult(auth.GetApplication(ctx, s.db, id))
}

// appPos is an application's position in their list: oldest first.
type appPos struct {
	T  time.Time `json:"t"`
	ID uuid.UUID `json:"id"`
}

// Applications implements admin.Store.
func (s *Admin) Applications(ctx context.Context, p paging.Request) ([]admin.Application, paging.Links, error) {
	const list = "applications"
	cur, err := paging.Decode[appPos](list, p.Cursor)
	if err != nil {
		return nil, paging.Links{}, err
	}
	// The first page starts after year 1, before any created_at; a page
	// before a position reads backwards from it.
	var after appPos
	if cur != nil {
		after = cur.Pos
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	limit := p.Size()
	rows, err := auth.ListApplications(ctx, s.db, after.T, after.ID, cur != nil && cur.Reverse, limit+1)
	if err != nil {
		return nil, paging.Links{}, err
	}
	rows, links := paging.Cut(list, rows, limit, cur, func(a auth.Application) appPos { return appPos{a.CreatedAt, a.ID} })
	apps := make([]admin.Application, len(rows))
	for i, r := range rows {
		apps[i] = toApplication(r)
	}
	return apps, links, nil
}

// UpdateApplication implements admin.Store.
func (s *Admin) UpdateApplication(ctx context.Context, id uuid.UUID, change func(admin.Application) (admin.Application, error)) (admin.Application, error) {
	var out admin.Application
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		cur, err := auth.LockApplication(ctx, tx, id)
		if err != nil {
			return notFoundAdmin(err)
		}
		next, err := change(toApplication(cur))
		if err != nil {
			return err
		}
		out, err = appResult(auth.UpdateApplication(ctx, tx, id, next.Name, appSettings(next.Settings)))
		return err
	})
	return out, err
}

// SetDisabled implements admin.Store.
func (s *Admin) SetDisabled(ctx context.Context, id uuid.UUID, disabled bool) (admin.Application, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return appResult(auth.SetApplicationDisabled(ctx, s.db, id, disabled))
}

// CreateKey implements admin.Store.
func (s *Admin) CreateKey(ctx context.Context, app uuid.UUID, in admin.NewKey) (admin.CreatedKey, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	k, secret, err := auth.CreateKey(ctx, s.db, app, in.Scopes, in.Label)
	if err != nil {
		return admin.CreatedKey{}, notFoundAdmin(err)
	}
	return admin.CreatedKey{Key: toKey(k), Secret: secret}, nil
}

// Keys implements admin.Store: an application that does not exist is
// admin.ErrNotFound.
func (s *Admin) Keys(ctx context.Context, app uuid.UUID) ([]admin.Key, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := auth.GetApplication(ctx, s.db, app); err != nil {
		return nil, notFoundAdmin(err)
	}
	rows, err := auth.ListKeys(ctx, s.db, app)
	if err != nil {
		return nil, err
	}
	keys := make([]admin.Key, len(rows))
	for i, r := range rows {
		keys[i] = toKey(r)
	}
	return keys, nil
}

// RotateKey implements admin.Store: the old key is locked, the new one
// created and the old one's expiry set in one transaction.
func (s *Admin) RotateKey(ctx context.Context, id uuid.UUID, check func(old admin.Key, expired bool) error, overlap time.Duration) (admin.RotatedKey, error) {
	var out admin.RotatedKey
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		old, expired, err := auth.LockKey(ctx, tx, id)
		if err != nil {
			return notFoundAdmin(err)
		}
		if err := check(toKey(old), expired); err != nil {
			return err
		}
		created, secret, err := auth.CreateKey(ctx, tx, old.AppID, old.Scopes, old.Label)
		if err != nil {
			return notFoundAdmin(err)
		}
		prev, err := auth.ExpireKey(ctx, tx, id, overlap)
		if err != nil {
			return fmt.Errorf("rotate key: %w", err)
		}
		out = admin.RotatedKey{CreatedKey: admin.CreatedKey{Key: toKey(created), Secret: secret}, Previous: toKey(prev)}
		return nil
	})
	return out, err
}

// RevokeKey implements admin.Store.
func (s *Admin) RevokeKey(ctx context.Context, id uuid.UUID) (admin.Key, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	k, err := auth.RevokeKey(ctx, s.db, id)
	if err != nil {
		return admin.Key{}, notFoundAdmin(err)
	}
	return toKey(k), nil
}

// tx runs f in a transaction under the store's timeout; f must use the
// context it is given.
func (s *Admin) tx(ctx context.Context, f func(context.Context, *sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := f(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

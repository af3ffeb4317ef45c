package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// PGStore keeps applications and key hashes in Postgres.
type PGStore struct {
	db *sqlx.DB
}

var _ KeyStore = (*PGStore)(nil)

// NewPGStore returns a store on db.
func NewPGStore(db *sqlx.DB) (*PGStore, error) {
	if db == nil {
		return nil, errors.New("auth: nil db")
	}
	return &PGStore{db: db}, nil
}

// LookupKey implements KeyStore. It refuses keys that are revoked or
// expired and keys of a disabled application, and loads the application's
// settings into the principal.
func (s *PGStore) LookupKey(ctx context.Context, h Hash) (Principal, error) {
	const q = `
		SELECT k.id, k.app_id, k.scopes, k.expires_at, ` + settingsCols + `
		FROM api_keys k JOIN applications a ON a.id = k.app_id
		WHERE k.hash = $1
		  AND k.revoked_at IS NULL
		  AND (k.expires_at IS NULL OR k.expires_at > now())
		  AND a.disabled_at IS NULL`
	var row struct {
		ID        uuid.UUID      `db:"id"`
		AppID     uuid.UUID      `db:"app_id"`
		Scopes    pq.StringArray `db:"scopes"`
		ExpiresAt sql.NullTime   `db:"expires_at"`
		settingsRow
	}
	err := s.db.GetContext(ctx, &row, q, h[:])
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrUnknownKey
	}
	if err != nil {
		return Principal{}, fmt.Errorf("lookup key: %w", err)
	}
	p := Principal{AppID: row.AppID, KeyID: row.ID, Settings: row.settings()}
	if row.ExpiresAt.Valid {
		p.ExpiresAt = row.ExpiresAt.Time
	}
	for _, sc := range row.Scopes {
		p.Scopes = append(p.Scopes, Scope(sc))
	}
	return p, nil
}

// EnsureApplication creates the application if it does not exist.
func (s *PGStore) EnsureApplication(ctx context.Context, id uuid.UUID, name string) error {
	return EnsureApplication(ctx, s.db, id, name)
}

// PutKey stores key for app with scopes, replacing the scopes and clearing
// any revocation or expiry if the key already exists (its id is kept).
func (s *PGStore) PutKey(ctx context.Context, app uuid.UUID, key, label string, scopes ...Scope) error {
	const q = `
		INSERT INTO api_keys (hash, app_id, scopes, label, prefix) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (hash) DO UPDATE
		SET app_id = EXCLUDED.app_id, scopes = EXCLUDED.scopes, label = EXCLUDED.label,
		    prefix = EXCLUDED.prefix, revoked_at = NULL, expires_at = NULL`
	h := HashKey(key)
	ss := make(pq.StringArray, len(scopes))
	for i, sc := range scopes {
		ss[i] = string(sc)
	}
	if _, err := s.db.ExecContext(ctx, q, h[:], app, ss, label, KeyPrefix(key)); err != nil {
		return fmt.Errorf("put key: %w", err)
	}
	return nil
}

// DevAppID is the application that development keys belong to.
var DevAppID = uuid.MustParse("00000000-0000-4000-8000-00000000de00")

// DevKeys are the development keys registered at start-up for the dev
// application (EYE_DEV_WRITE_KEY, EYE_DEV_READ_KEY, EYE_DEV_ADMIN_KEY). Each
// does what its name says: Write ingests, Read queries, Admin queries and
// administers. Empty keys are skipped.
type DevKeys struct {
	Write, Read, Admin string
}

// RegisterDevKeys registers keys for the dev application, each with the
// scopes its name says (the admin key reads too). A key already stored gets
// those scopes back, so a key that earlier start-ups registered with more
// rights loses them.
func (s *PGStore) RegisterDevKeys(ctx context.Context, keys DevKeys) error {
	if keys == (DevKeys{}) {
		return nil
	}
	if err := s.EnsureApplication(ctx, DevAppID, "dev"); err != nil {
		return err
	}
	for _, k := range []struct {
		key, label string
		scopes     []Scope
	}{
		{keys.Write, "dev write", []Scope{ScopeWrite}},
		{keys.Read, "dev read", []Scope{ScopeRead}},
		{keys.Admin, "dev admin", []Scope{ScopeRead, ScopeAdmin}},
	} {
		if k.key == "" {
			continue
		}
		if err := s.PutKey(ctx, DevAppID, k.key, k.label, k.scopes...); err != nil {
			return err
		}
	}
	return nil
}

// Setup is what a service that checks keys does at start-up: a key store on
// db, the development keys registered (when given), and an authenticator
// caching lookups for ttl.
func Setup(ctx context.Context, db *sqlx.DB, ttl time.Duration, dev DevKeys) (*Authenticator, *PGStore, error) {
	keys, err := NewPGStore(db)
	if err != nil {
		return nil, nil, err
	}
	if err := keys.RegisterDevKeys(ctx, dev); err != nil {
		return nil, nil, err
	}
	a, err := NewAuthenticator(keys, ttl)
	if err != nil {
		return nil, nil, err
	}
	return a, keys, nil
}

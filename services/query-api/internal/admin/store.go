package admin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// Config configures a Store.
type Config struct {
	// Timeout bounds every statement or transaction.
	Timeout time.Duration
	// RotationOverlap is how long a rotated key keeps working when the
	// rotation does not say (EYE_KEY_ROTATION_OVERLAP).
	RotationOverlap time.Duration
}

// Store keeps applications and API keys in Postgres.
type Store struct {
	db  *sqlx.DB
	cfg Config
}

// NewStore returns a Store on db.
func NewStore(db *sqlx.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("admin: nil db")
	}
	if cfg.Timeout <= 0 {
		return nil, errors.New("admin: timeout must be positive")
	}
	if cfg.RotationOverlap < 0 || cfg.RotationOverlap > MaxOverlap {
		return nil, fmt.Errorf("admin: rotation overlap must be between 0s and %s", MaxOverlap)
	}
	return &Store{db: db, cfg: cfg}, nil
}

const appCols = `id, name, allowed_origins, rate_limit, rate_burst, strict_sessions, strict_types, created_at, disabled_at`

type appRow struct {
	ID             uuid.UUID      `db:"id"`
	Name           string         `db:"name"`
	AllowedOrigins pq.StringArray `db:"allowed_origins"`
	RateLimit      float64        `db:"rate_limit"`
	RateBurst      int            `db:"rate_burst"`
	StrictSessions bool           `db:"strict_sessions"`
	StrictTypes    bool           `db:"strict_types"`
	CreatedAt      time.Time      `db:"created_at"`
	DisabledAt     sql.NullTime   `db:"disabled_at"`
}

func (r appRow) toApplication() Application {
	origins := []string(r.AllowedOrigins)
	if origins == nil {
		origins = []string{}
	}
	return Application{
		ID:   r.ID,
		Name: r.Name,
		Settings: Settings{AllowedOrigins: origins, RateLimit: r.RateLimit,
			RateBurst: r.RateBurst, StrictSessions: r.StrictSessions, StrictTypes: r.StrictTypes},
		CreatedAt:  apitime.New(r.CreatedAt),
		DisabledAt: apitime.Null(r.DisabledAt),
	}
}

const keyCols = `id, app_id, prefix, label, scopes, created_at, expires_at, revoked_at`

type keyRow struct {
	ID        uuid.UUID      `db:"id"`
	AppID     uuid.UUID      `db:"app_id"`
	Prefix    string         `db:"prefix"`
	Label     string         `db:"label"`
	Scopes    pq.StringArray `db:"scopes"`
	CreatedAt time.Time      `db:"created_at"`
	ExpiresAt sql.NullTime   `db:"expires_at"`
	RevokedAt sql.NullTime   `db:"revoked_at"`
}

func (r keyRow) toKey() Key {
	k := Key{ID: r.ID, ApplicationID: r.AppID, Prefix: r.Prefix, Label: r.Label, Scopes: []auth.Scope{},
		CreatedAt: apitime.New(r.CreatedAt), ExpiresAt: apitime.Null(r.ExpiresAt), RevokedAt: apitime.Null(r.RevokedAt)}
	for _, s := range r.Scopes {
		k.Scopes = append(k.Scopes, auth.Scope(s))
	}
	return k
}

// CreateApplication creates an application.
func (s *Store) CreateApplication(ctx context.Context, in NewApplication) (Application, error) {
	name, err := validName(in.Name)
	if err != nil {
		return Application{}, err
	}
	set, err := in.Settings.normalize()
	if err != nil {
		return Application{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Application{}, fmt.Errorf("create application: %w", err)
	}
	const q = `
		INSERT INTO applications (id, name, allowed_origins, rate_limit, rate_burst, strict_sessions, strict_types)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING ` + appCols
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var r appRow
	err = s.db.GetContext(ctx, &r, q, id, name, pq.StringArray(set.AllowedOrigins), set.RateLimit, set.RateBurst, set.StrictSessions, set.StrictTypes)
	if err != nil {
		return Application{}, fmt.Errorf("create application: %w", err)
	}
	return r.toApplication(), nil
}

// Application returns one application.
func (s *Store) Application(ctx context.Context, id uuid.UUID) (Application, error) {
	const q = `SELECT ` + appCols + ` FROM applications WHERE id = $1`
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var r appRow
	if err := s.db.GetContext(ctx, &r, q, id); err != nil {
		return Application{}, notFound("get application", err)
	}
	return r.toApplication(), nil
}

// appPos is an application's position in their list: oldest first.
type appPos struct {
	T  time.Time `json:"t"`
	ID uuid.UUID `json:"id"`
}

// Applications lists applications, oldest first, a page at a time.
func (s *Store) Applications(ctx context.Context, p paging.Request) ([]Application, paging.Links, error) {
	const list = "applications"
	cur, err := paging.Decode[appPos](list, p.Cursor)
	if err != nil {
		return nil, paging.Links{}, err
	}
	// The first page starts after year 1, before any created_at; a page
	// before a position reads backwards from it.
	q := `SELECT ` + appCols + ` FROM applications WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT $3`
	var after appPos
	if cur != nil {
		after = cur.Pos
		if cur.Reverse {
			q = `SELECT ` + appCols + ` FROM applications WHERE (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3`
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	limit := p.Size()
	var rows []appRow
	if err := s.db.SelectContext(ctx, &rows, q, after.T, after.ID, limit+1); err != nil {
		return nil, paging.Links{}, fmt.Errorf("list applications: %w", err)
	}
	rows, links := paging.Cut(list, rows, limit, cur, func(r appRow) appPos { return appPos{r.CreatedAt, r.ID} })
	apps := make([]Application, len(rows))
	for i, r := range rows {
		apps[i] = r.toApplication()
	}
	return apps, links, nil
}

// UpdateApplication applies change to an application; the result must pass
// the same checks as a new one.
func (s *Store) UpdateApplication(ctx context.Context, id uuid.UUID, change ApplicationChange) (Application, error) {
	var out Application
	err := s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		const get = `SELECT ` + appCols + ` FROM applications WHERE id = $1 FOR UPDATE`
		var r appRow
		if err := tx.GetContext(ctx, &r, get, id); err != nil {
			return notFound("update application", err)
		}
		app := r.toApplication()
		if change.Name != nil {
			app.Name = *change.Name
		}
		if change.AllowedOrigins != nil {
			app.Settings.AllowedOrigins = *change.AllowedOrigins
		}
		if change.RateLimit != nil {
			app.Settings.RateLimit = *change.RateLimit
		}
		if change.RateBurst != nil {
			app.Settings.RateBurst = *change.RateBurst
		}
		if change.StrictSessions != nil {
			app.Settings.StrictSessions = *change.StrictSessions
		}
		if change.StrictTypes != nil {
			app.Settings.StrictTypes = *change.StrictTypes
		}
		name, err := validName(app.Name)
		if err != nil {
			return err
		}
		set, err := app.Settings.normalize()
		if err != nil {
			return err
		}
		const q = `
			UPDATE applications
			SET name = $2, allowed_origins = $3, rate_limit = $4, rate_burst = $5, strict_sessions = $6, strict_types = $7
			WHERE id = $1
			RETURNING ` + appCols
		if err := tx.GetContext(ctx, &r, q, id, name, pq.StringArray(set.AllowedOrigins), set.RateLimit, set.RateBurst, set.StrictSessions, set.StrictTypes); err != nil {
			return fmt.Errorf("update application: %w", err)
		}
		out = r.toApplication()
		return nil
	})
	return out, err
}

// Disable disables an application: its keys stop working (within the key
// cache TTL). Disabling a disabled application changes nothing. callerApp is
// the application of the key making the request, which may not disable it
// and lock itself out.
func (s *Store) Disable(ctx context.Context, id, callerApp uuid.UUID) (Application, error) {
	if id == callerApp {
		if _, err := s.Application(ctx, id); err != nil {
			return Application{}, err
		}
		return Application{}, ErrOwnApplication
	}
	const q = `
		UPDATE applications SET disabled_at = COALESCE(disabled_at, now())
		WHERE id = $1
		RETURNING ` + appCols
	return s.setDisabled(ctx, "disable application", q, id)
}

// Enable enables an application again; its keys that are neither revoked
// nor expired work again.
func (s *Store) Enable(ctx context.Context, id uuid.UUID) (Application, error) {
	const q = `UPDATE applications SET disabled_at = NULL WHERE id = $1 RETURNING ` + appCols
	return s.setDisabled(ctx, "enable application", q, id)
}

func (s *Store) setDisabled(ctx context.Context, op, q string, id uuid.UUID) (Application, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var r appRow
	if err := s.db.GetContext(ctx, &r, q, id); err != nil {
		return Application{}, notFound(op, err)
	}
	return r.toApplication(), nil
}

// CreateKey creates a key for an application. Its prefix names its most
// powerful scope (eye_a_, eye_r_, eye_w_).
func (s *Store) CreateKey(ctx context.Context, app uuid.UUID, in NewKey) (CreatedKey, error) {
	in, err := in.normalize()
	if err != nil {
		return CreatedKey{}, err
	}
	var out CreatedKey
	err = s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		var err error
		out, err = insertKey(ctx, tx, app, in)
		return err
	})
	return out, err
}

// insertKey generates and stores a key; ErrNotFound if app does not exist.
func insertKey(ctx context.Context, tx *sqlx.Tx, app uuid.UUID, in NewKey) (CreatedKey, error) {
	secret, err := auth.NewKey(auth.PrimaryScope(in.Scopes))
	if err != nil {
		return CreatedKey{}, fmt.Errorf("create key: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return CreatedKey{}, fmt.Errorf("create key: %w", err)
	}
	scopes := make(pq.StringArray, len(in.Scopes))
	for i, sc := range in.Scopes {
		scopes[i] = string(sc)
	}
	h := auth.HashKey(secret)
	const q = `
		INSERT INTO api_keys (id, hash, app_id, scopes, label, prefix)
		SELECT $1, $2, a.id, $4, $5, $6 FROM applications a WHERE a.id = $3
		RETURNING ` + keyCols
	var r keyRow
	if err := tx.GetContext(ctx, &r, q, id, h[:], app, scopes, in.Label, auth.KeyPrefix(secret)); err != nil {
		return CreatedKey{}, notFound("create key", err)
	}
	return CreatedKey{Key: r.toKey(), Secret: secret}, nil
}

// Keys lists an application's keys, oldest first, revoked and expired ones
// included; never their material.
func (s *Store) Keys(ctx context.Context, app uuid.UUID) ([]Key, error) {
	if _, err := s.Application(ctx, app); err != nil {
		return nil, err
	}
	const q = `SELECT ` + keyCols + ` FROM api_keys WHERE app_id = $1 ORDER BY created_at, id`
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var rows []keyRow
	if err := s.db.SelectContext(ctx, &rows, q, app); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys := make([]Key, 0, len(rows))
	for _, r := range rows {
		keys = append(keys, r.toKey())
	}
	return keys, nil
}

// RotatedKey is the answer to a rotation: the new key, shown once, and the
// key it replaces with its expiry.
type RotatedKey struct {
	CreatedKey
	Previous Key `json:"previous"`
}

// RotateKey creates a key with the same application, scopes and label as
// key id, and makes the old one expire after overlap ("" for the configured
// default; "0s" ends it now). An old key already expiring sooner keeps its
// earlier expiry. Revoked and expired keys cannot be rotated.
func (s *Store) RotateKey(ctx context.Context, id uuid.UUID, overlap string) (RotatedKey, error) {
	d, err := ParseOverlap(overlap, s.cfg.RotationOverlap)
	if err != nil {
		return RotatedKey{}, err
	}
	var out RotatedKey
	err = s.tx(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		const get = `
			SELECT ` + keyCols + `, expires_at IS NOT NULL AND expires_at <= now() AS expired
			FROM api_keys WHERE id = $1 FOR UPDATE`
		var old struct {
			keyRow
			Expired bool `db:"expired"`
		}
		if err := tx.GetContext(ctx, &old, get, id); err != nil {
			return notFound("rotate key", err)
		}
		switch {
		case old.RevokedAt.Valid:
			return ErrKeyRevoked
		case old.Expired:
			return ErrKeyExpired
		}
		prev := old.toKey()
		created, err := insertKey(ctx, tx, prev.ApplicationID, NewKey{Scopes: prev.Scopes, Label: prev.Label})
		if err != nil {
			return err
		}
		const expire = `
			UPDATE api_keys
			SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + $2 * interval '1 microsecond')
			WHERE id = $1
			RETURNING ` + keyCols
		var r keyRow
		if err := tx.GetContext(ctx, &r, expire, id, d.Microseconds()); err != nil {
			return fmt.Errorf("rotate key: %w", err)
		}
		out = RotatedKey{CreatedKey: created, Previous: r.toKey()}
		return nil
	})
	return out, err
}

// RevokeKey revokes a key: it stops working within the services' key cache
// TTL. Revoking a revoked key changes nothing.
func (s *Store) RevokeKey(ctx context.Context, id uuid.UUID) (Key, error) {
	const q = `
		UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
		WHERE id = $1
		RETURNING ` + keyCols
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var r keyRow
	if err := s.db.GetContext(ctx, &r, q, id); err != nil {
		return Key{}, notFound("revoke key", err)
	}
	return r.toKey(), nil
}

// tx runs f in a transaction under the store's timeout; f must use the
// context it is given.
func (s *Store) tx(ctx context.Context, f func(context.Context, *sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
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

// notFound turns "no row" into ErrNotFound and wraps other errors with op.
func notFound(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return fmt.Errorf("%s: %w", op, err)
}

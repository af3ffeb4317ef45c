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

// ErrKeyNotFound: no such stored API key.
var ErrKeyNotFound = errors.New("no such key")

// KeyRecord is a stored API key: everything but its material, which only
// its SHA-256 hash is kept of.
type KeyRecord struct {
	ID        uuid.UUID
	AppID     uuid.UUID
	Prefix    string
	Label     string
	Scopes    []Scope
	CreatedAt time.Time
	ExpiresAt sql.NullTime
	RevokedAt sql.NullTime
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

func (r keyRow) record() KeyRecord {
	k := KeyRecord{ID: r.ID, AppID: r.AppID, Prefix: r.Prefix, Label: r.Label, Scopes: []Scope{},
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt}
	for _, s := range r.Scopes {
		k.Scopes = append(k.Scopes, Scope(s))
	}
	return k
}

// getKey runs q (which returns keyCols) and turns "no row" into notFound.
func getKey(ctx context.Context, db sqlx.QueryerContext, notFound error, op, q string, args ...any) (KeyRecord, error) {
	var r keyRow
	err := sqlx.GetContext(ctx, db, &r, q, args...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return KeyRecord{}, notFound
	case err != nil:
		return KeyRecord{}, fmt.Errorf("%s: %w", op, err)
	}
	return r.record(), nil
}

// CreateKey generates a key with scopes (its prefix names the most
// powerful) and label for application app, stores its hash and returns it
// with its material, which is never stored. An application that does not
// exist is ErrNoApplication.
func CreateKey(ctx context.Context, db sqlx.QueryerContext, app uuid.UUID, scopes []Scope, label string) (KeyRecord, string, error) {
	secret, err := NewKey(PrimaryScope(scopes))
	if err != nil {
		return KeyRecord{}, "", fmt.Errorf("create key: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return KeyRecord{}, "", fmt.Errorf("create key: %w", err)
	}
	ss := make(pq.StringArray, len(scopes))
	for i, sc := range scopes {
		ss[i] = string(sc)
	}
	h := HashKey(secret)
	const q = `
		INSERT INTO api_keys (id, hash, app_id, scopes, label, prefix)
		SELECT $1, $2, a.id, $4, $5, $6 FROM applications a WHERE a.id = $3
		RETURNING ` + keyCols
	k, err := getKey(ctx, db, ErrNoApplication, "create key", q, id, h[:], app, ss, label, KeyPrefix(secret))
	if err != nil {
		return KeyRecord{}, "", err
	}
	return k, secret, nil
}

// ListKeys returns an application's keys, oldest first, revoked and
// expired ones included.
func ListKeys(ctx context.Context, db sqlx.QueryerContext, app uuid.UUID) ([]KeyRecord, error) {
	const q = `SELECT ` + keyCols + ` FROM api_keys WHERE app_id = $1 ORDER BY created_at, id`
	var rows []keyRow
	if err := sqlx.SelectContext(ctx, db, &rows, q, app); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]KeyRecord, len(rows))
	for i, r := range rows {
		out[i] = r.record()
	}
	return out, nil
}

// LockKey returns key id locked until tx ends, and whether it has expired.
func LockKey(ctx context.Context, tx sqlx.QueryerContext, id uuid.UUID) (KeyRecord, bool, error) {
	const q = `
		SELECT ` + keyCols + `, expires_at IS NOT NULL AND expires_at <= now() AS expired
		FROM api_keys WHERE id = $1 FOR UPDATE`
	var r struct {
		keyRow
		Expired bool `db:"expired"`
	}
	err := sqlx.GetContext(ctx, tx, &r, q, id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return KeyRecord{}, false, ErrKeyNotFound
	case err != nil:
		return KeyRecord{}, false, fmt.Errorf("lock key: %w", err)
	}
	return r.record(), r.Expired, nil
}

// ExpireKey makes key id expire within d from now, unless it expires
// sooner already.
func ExpireKey(ctx context.Context, db sqlx.QueryerContext, id uuid.UUID, d time.Duration) (KeyRecord, error) {
	const q = `
		UPDATE api_keys
		SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + $2 * interval '1 microsecond')
		WHERE id = $1
		RETURNING ` + keyCols
	return getKey(ctx, db, ErrKeyNotFound, "expire key", q, id, d.Microseconds())
}

// RevokeKey revokes key id; a revoked key keeps the time of its first
// revocation. It stops working within the services' key cache TTL.
func RevokeKey(ctx context.Context, db sqlx.QueryerContext, id uuid.UUID) (KeyRecord, error) {
	const q = `
		UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now())
		WHERE id = $1
		RETURNING ` + keyCols
	return getKey(ctx, db, ErrKeyNotFound, "revoke key", q, id)
}

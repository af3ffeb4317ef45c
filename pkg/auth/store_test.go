package auth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

func newStore(t *testing.T) (*PGStore, *sqlx.DB) {
	t.Helper()
	db, err := pg.Open(context.Background(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := NewPGStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// putKey stores a new key for app and returns it with its id.
func putKey(t *testing.T, s *PGStore, db *sqlx.DB, app uuid.UUID, scopes ...Scope) (string, uuid.UUID) {
	t.Helper()
	k, err := NewKey(PrimaryScope(scopes))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutKey(context.Background(), app, k, "test", scopes...); err != nil {
		t.Fatal(err)
	}
	var id uuid.UUID
	h := HashKey(k)
	if err := db.Get(&id, `SELECT id FROM api_keys WHERE hash = $1`, h[:]); err != nil {
		t.Fatal(err)
	}
	return k, id
}

func TestLookupLoadsSettingsKeyIDAndPrefix(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	app := uuid.New()
	if err := s.EnsureApplication(ctx, app, "shop"); err != nil {
		t.Fatal(err)
	}
	const set = `UPDATE applications SET allowed_origins = '{https://shop.example,http://localhost:3000}',
		rate_limit = 12.5, rate_burst = 40, strict_sessions = true WHERE id = $1`
	if _, err := db.Exec(set, app); err != nil {
		t.Fatal(err)
	}
	key, id := putKey(t, s, db, app, ScopeWrite)
	p, err := s.LookupKey(ctx, HashKey(key))
	if err != nil {
		t.Fatal(err)
	}
	want := AppSettings{AllowedOrigins: []string{"https://shop.example", "http://localhost:3000"}, RateLimit: 12.5, RateBurst: 40, StrictSessions: true}
	if p.AppID != app || p.KeyID != id || id == uuid.Nil || !p.ExpiresAt.IsZero() ||
		!slices.Equal(p.Settings.AllowedOrigins, want.AllowedOrigins) || p.Settings.RateLimit != want.RateLimit ||
		p.Settings.RateBurst != want.RateBurst || p.Settings.StrictSessions != want.StrictSessions {
		t.Fatalf("principal %+v, want app %s key %s settings %+v", p, app, id, want)
	}
	var prefix string
	h := HashKey(key)
	db.Get(&prefix, `SELECT prefix FROM api_keys WHERE hash = $1`, h[:])
	if prefix != key[:10] || prefix[:6] != "eye_w_" {
		t.Fatalf("stored prefix %q for key starting %q", prefix, key[:10])
	}

	// An application with default settings: nothing allowed, gateway defaults.
	other := uuid.New()
	s.EnsureApplication(ctx, other, "plain")
	k2, _ := putKey(t, s, db, other, ScopeRead)
	p, err = s.LookupKey(ctx, HashKey(k2))
	if err != nil || len(p.Settings.AllowedOrigins) != 0 || p.Settings.RateLimit != 0 || p.Settings.StrictSessions {
		t.Fatalf("default settings: %+v %v", p, err)
	}
}

func TestExpiredKeyIsRefused(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	app := uuid.New()
	s.EnsureApplication(ctx, app, "a")
	key, id := putKey(t, s, db, app, ScopeRead)

	if _, err := db.Exec(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupKey(ctx, HashKey(key)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("expired key: %v, want ErrUnknownKey", err)
	}
	if _, err := db.Exec(`UPDATE api_keys SET expires_at = now() + interval '1 hour' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	p, err := s.LookupKey(ctx, HashKey(key))
	if err != nil || p.ExpiresAt.IsZero() || time.Until(p.ExpiresAt) < 59*time.Minute {
		t.Fatalf("key expiring in an hour: %+v %v", p, err)
	}
	// Re-registering a key (dev keys, every start-up) clears its expiry.
	if err := s.PutKey(ctx, app, key, "again", ScopeRead); err != nil {
		t.Fatal(err)
	}
	if p, err := s.LookupKey(ctx, HashKey(key)); err != nil || !p.ExpiresAt.IsZero() || p.KeyID != id {
		t.Fatalf("re-registered key: %+v %v", p, err)
	}
}

// TestRotationOverlap: after a rotation the old key keeps working until its
// expiry and not a moment longer, even when the cache TTL is much longer.
func TestRotationOverlap(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	app := uuid.New()
	s.EnsureApplication(ctx, app, "a")
	oldKey, oldID := putKey(t, s, db, app, ScopeWrite)
	a, err := NewAuthenticator(s, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, oldKey); err != nil {
		t.Fatal(err)
	}

	// Rotate: a new key, and the old one expires after the overlap. The
	// Authenticator caching the old key's earlier answer is a fresh one here,
	// as in a service started after the rotation.
	const overlap = 1500 * time.Millisecond
	newKey, newID := putKey(t, s, db, app, ScopeWrite)
	if _, err := db.Exec(`UPDATE api_keys SET expires_at = now() + $2 * interval '1 millisecond' WHERE id = $1`, oldID, overlap.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	a, _ = NewAuthenticator(s, time.Hour)
	pOld, errOld := a.Authenticate(ctx, oldKey)
	pNew, errNew := a.Authenticate(ctx, newKey)
	if errOld != nil || errNew != nil || pOld.KeyID != oldID || pNew.KeyID != newID || pOld.AppID != app || pNew.AppID != app {
		t.Fatalf("during the overlap: old %+v %v, new %+v %v", pOld, errOld, pNew, errNew)
	}
	deadline := time.Now().Add(overlap + 2*time.Second)
	for {
		_, err := a.Authenticate(ctx, oldKey)
		if errors.Is(err, ErrUnknownKey) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the old key still works after its overlap ended (cached past its expiry?)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := a.Authenticate(ctx, newKey); err != nil {
		t.Fatalf("new key after the overlap: %v", err)
	}
}

func TestKeyFormatHelpers(t *testing.T) {
	for _, c := range []struct {
		scopes []Scope
		want   Scope
		prefix string
	}{
		{[]Scope{ScopeWrite}, ScopeWrite, "eye_w_"},
		{[]Scope{ScopeRead}, ScopeRead, "eye_r_"},
		{[]Scope{ScopeRead, ScopeAdmin}, ScopeAdmin, "eye_a_"},
		{[]Scope{ScopeAdmin}, ScopeAdmin, "eye_a_"},
	} {
		got := PrimaryScope(c.scopes)
		k, err := NewKey(got)
		if got != c.want || err != nil || k[:6] != c.prefix || len(KeyPrefix(k)) != KeyPrefixLen {
			t.Errorf("%v: primary %q key %q %v", c.scopes, got, KeyPrefix(k), err)
		}
	}
	if PrimaryScope([]Scope{"bogus"}) != "" || Scope("bogus").Valid() {
		t.Error("unknown scope accepted")
	}
	if _, err := NewKey(""); err == nil {
		t.Error("NewKey with no scope did not fail")
	}
	if KeyPrefix("short") != "short" {
		t.Error("KeyPrefix of a short string")
	}
}

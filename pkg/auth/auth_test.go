package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

func TestKeysRevocationAndScopes(t *testing.T) {
	ctx := context.Background()
	db, err := pg.Open(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := NewPGStore(db)
	if err != nil {
		t.Fatal(err)
	}
	write, _ := NewKey(ScopeWrite)
	read, _ := NewKey(ScopeRead)
	adm, _ := NewKey(ScopeAdmin)
	if !strings.HasPrefix(write, "eye_w_") || !strings.HasPrefix(read, "eye_r_") || !strings.HasPrefix(adm, "eye_a_") || len(write) != 38 {
		t.Fatalf("keys %q %q %q", write, read, adm)
	}
	// A read key that an older start-up registered with admin rights
	// loses them when the dev keys are registered again.
	if err := store.EnsureApplication(ctx, DevAppID, "dev"); err != nil {
		t.Fatal(err)
	}
	if err := store.PutKey(ctx, DevAppID, read, "dev read", ScopeRead, ScopeAdmin); err != nil {
		t.Fatal(err)
	}
	dev := DevKeys{Write: write, Read: read, Admin: adm}
	if err := store.RegisterDevKeys(ctx, dev); err != nil {
		t.Fatal(err)
	}
	if err := store.RegisterDevKeys(ctx, dev); err != nil { // every start-up does it again
		t.Fatal(err)
	}
	const ttl = 300 * time.Millisecond
	a, err := NewAuthenticator(store, ttl)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(ctx, write)
	if err != nil || p.AppID != DevAppID || !p.Has(ScopeWrite) || p.Has(ScopeRead) {
		t.Fatalf("write key: %+v %v", p, err)
	}
	p, err = a.Authenticate(ctx, read)
	if err != nil || !p.Has(ScopeRead) || p.Has(ScopeAdmin) || p.Has(ScopeWrite) || PrimaryScope(p.Scopes) != ScopeRead {
		t.Fatalf("read key: %+v %v", p, err)
	}
	p, err = a.Authenticate(ctx, adm)
	if err != nil || !p.Has(ScopeRead) || !p.Has(ScopeAdmin) || p.Has(ScopeWrite) || PrimaryScope(p.Scopes) != ScopeAdmin {
		t.Fatalf("admin key: %+v %v", p, err)
	}
	if _, err := a.Authenticate(ctx, "eye_w_nope"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := a.Authenticate(ctx, ""); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}
	// Only the hash is stored.
	var n int
	db.Get(&n, `SELECT count(*) FROM api_keys WHERE position($1::bytea IN hash) > 0`, []byte(write))
	if n != 0 {
		t.Fatal("key material stored")
	}

	h := HashKey(write)
	if _, err := db.Exec(`UPDATE api_keys SET revoked_at = now() WHERE hash = $1`, h[:]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(ttl + 2*time.Second)
	for {
		_, err := a.Authenticate(ctx, write)
		if errors.Is(err, ErrUnknownKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still accepted after %s", ttl+2*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Keys of a disabled application stop working too.
	other := uuid.New()
	k, _ := NewKey(ScopeRead)
	store.EnsureApplication(ctx, other, "other")
	store.PutKey(ctx, other, k, "", ScopeRead)
	db.Exec(`UPDATE applications SET disabled_at = now() WHERE id = $1`, other)
	if _, err := store.LookupKey(ctx, HashKey(k)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("key of a disabled application: %v", err)
	}
}

// stuckStore answers its first lookup, then hangs like a frozen database.
type stuckStore struct{ calls int }

func (s *stuckStore) LookupKey(ctx context.Context, h Hash) (Principal, error) {
	s.calls++
	if s.calls == 1 {
		return Principal{AppID: uuid.New(), Scopes: []Scope{ScopeWrite}}, nil
	}
	select {} // never answers, whatever ctx says
}

func TestAuthenticateSurvivesAFrozenStore(t *testing.T) {
	a, err := NewAuthenticator(&stuckStore{}, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(context.Background(), "eye_w_k"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the cache entry expires
	start := time.Now()
	p, err := a.Authenticate(context.Background(), "eye_w_k")
	if err != nil || !p.Has(ScopeWrite) {
		t.Fatalf("a key valid at its last check, store frozen: %+v %v", p, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
	start = time.Now()
	if _, err := a.Authenticate(context.Background(), "eye_w_other"); err == nil || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("an unseen key with the store frozen: %v, want an unavailable error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("an unseen key took %s to fail", d)
	}
}

package auth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestApplicationsTable: applications are created, read, listed both ways,
// updated (in a transaction, under a lock) and disabled and enabled here;
// a disabled application's keys stop working, and its settings stay
// readable (ReadSettings).
func TestApplicationsTable(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	if _, err := GetApplication(ctx, db, uuid.New()); !errors.Is(err, ErrNoApplication) {
		t.Fatalf("unknown application: %v", err)
	}
	set := AppSettings{AllowedOrigins: []string{"https://a.example"}, RateLimit: 5, RateBurst: 9, StrictTypes: true}
	a, err := CreateApplication(ctx, db, uuid.Must(uuid.NewV7()), "a", set)
	if err != nil || a.Name != "a" || !slices.Equal(a.Settings.AllowedOrigins, set.AllowedOrigins) || a.Settings.RateBurst != 9 ||
		!a.Settings.StrictTypes || a.CreatedAt.IsZero() || a.DisabledAt.Valid {
		t.Fatalf("create: %+v %v", a, err)
	}
	b, err := CreateApplication(ctx, db, uuid.Must(uuid.NewV7()), "b", AppSettings{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := ListApplications(ctx, db, time.Time{}, uuid.Nil, false, 10)
	if err != nil || len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
		t.Fatalf("list: %+v %v", all, err)
	}
	back, err := ListApplications(ctx, db, b.CreatedAt, b.ID, true, 10)
	if err != nil || len(back) != 1 || back[0].ID != a.ID {
		t.Fatalf("list backwards from b: %+v %v", back, err)
	}

	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockApplication(ctx, tx, a.ID); err != nil {
		t.Fatal(err)
	}
	set.StrictSessions, set.AllowedOrigins = true, nil
	if a, err = UpdateApplication(ctx, tx, a.ID, "a2", set); err != nil || a.Name != "a2" || !a.Settings.StrictSessions {
		t.Fatalf("update: %+v %v", a, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := UpdateApplication(ctx, db, uuid.New(), "x", set); !errors.Is(err, ErrNoApplication) {
		t.Fatalf("update of an unknown application: %v", err)
	}

	key, _ := putKey(t, s, db, a.ID, ScopeRead)
	if a, err = SetApplicationDisabled(ctx, db, a.ID, true); err != nil || !a.DisabledAt.Valid {
		t.Fatalf("disable: %+v %v", a, err)
	}
	first := a.DisabledAt.Time
	if a, err = SetApplicationDisabled(ctx, db, a.ID, true); err != nil || !a.DisabledAt.Time.Equal(first) {
		t.Fatalf("disabling again moved the time: %+v %v", a, err)
	}
	if _, err := s.LookupKey(ctx, HashKey(key)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("key of a disabled application: %v", err)
	}
	if got, err := ReadSettings(ctx, db, a.ID); err != nil || !got[a.ID].StrictSessions {
		t.Fatalf("settings of a disabled application: %+v %v", got, err)
	}
	if a, err = SetApplicationDisabled(ctx, db, a.ID, false); err != nil || a.DisabledAt.Valid {
		t.Fatalf("enable: %+v %v", a, err)
	}
	if _, err := s.LookupKey(ctx, HashKey(key)); err != nil {
		t.Fatalf("key of an enabled application: %v", err)
	}
}

// TestKeysTable: keys are created for existing applications only, listed
// without material, rotated (locked, then given an expiry that never moves
// later) and revoked here.
func TestKeysTable(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	if _, _, err := CreateKey(ctx, db, uuid.New(), []Scope{ScopeRead}, "x"); !errors.Is(err, ErrNoApplication) {
		t.Fatalf("key of an unknown application: %v", err)
	}
	app, err := CreateApplication(ctx, db, uuid.Must(uuid.NewV7()), "a", AppSettings{})
	if err != nil {
		t.Fatal(err)
	}
	k, secret, err := CreateKey(ctx, db, app.ID, []Scope{ScopeRead, ScopeAdmin}, "ops")
	if err != nil || k.Prefix != KeyPrefix(secret) || k.Prefix[:6] != "eye_a_" || !slices.Equal(k.Scopes, []Scope{ScopeRead, ScopeAdmin}) || k.Label != "ops" {
		t.Fatalf("create: %+v %q %v", k, secret, err)
	}
	if p, err := s.LookupKey(ctx, HashKey(secret)); err != nil || p.KeyID != k.ID {
		t.Fatalf("lookup of a created key: %+v %v", p, err)
	}
	if list, err := ListKeys(ctx, db, app.ID); err != nil || len(list) != 1 || list[0].ID != k.ID {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, _, err := LockKey(ctx, db, uuid.New()); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("lock of an unknown key: %v", err)
	}
	e, err := ExpireKey(ctx, db, k.ID, time.Hour)
	if err != nil || !e.ExpiresAt.Valid {
		t.Fatalf("expire: %+v %v", e, err)
	}
	if later, err := ExpireKey(ctx, db, k.ID, 48*time.Hour); err != nil || !later.ExpiresAt.Time.Equal(e.ExpiresAt.Time) {
		t.Fatalf("a later expiry replaced an earlier one: %+v %v", later, err)
	}
	if _, err := ExpireKey(ctx, db, k.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, expired, err := LockKey(ctx, db, k.ID); err != nil || !expired {
		t.Fatalf("an expired key: %v %v", expired, err)
	}
	r, err := RevokeKey(ctx, db, k.ID)
	if err != nil || !r.RevokedAt.Valid {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if _, err := RevokeKey(ctx, db, uuid.New()); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoke of an unknown key: %v", err)
	}
}

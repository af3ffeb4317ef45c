package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
	"github.com/the-eye/eye/services/query-api/internal/admin"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// newAdmin returns the administration domain on an Admin on a fresh
// database.
func newAdmin(t *testing.T) (*admin.Service, *sqlx.DB) {
	t.Helper()
	db, err := pg.Open(context.Background(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := NewAdmin(db, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s, err := admin.NewService(st, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// code is the code of an *admin.InvalidError, or "".
func code(err error) string {
	var ie *admin.InvalidError
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func TestApplications(t *testing.T) {
	ctx := context.Background()
	s, _ := newAdmin(t)
	app, err := s.CreateApplication(ctx, admin.NewApplication{Name: "shop",
		Settings: admin.Settings{AllowedOrigins: []string{"https://Shop.example"}, RateLimit: 5, RateBurst: 10, StrictSessions: true}})
	if err != nil {
		t.Fatal(err)
	}
	if app.ID.Version() != 7 || app.Name != "shop" || app.DisabledAt != nil || app.CreatedAt.IsZero() ||
		!slices.Equal(app.Settings.AllowedOrigins, []string{"https://shop.example"}) || app.Settings.RateBurst != 10 || !app.Settings.StrictSessions {
		t.Fatalf("created %+v", app)
	}
	if _, err := s.CreateApplication(ctx, admin.NewApplication{Name: ""}); code(err) != "invalid_name" {
		t.Fatalf("empty name: %v", err)
	}
	got, err := s.Application(ctx, app.ID)
	if err != nil || got.Name != "shop" || got.Settings.RateLimit != 5 {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.Application(ctx, uuid.New()); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}

	name, strict, origins := "web shop", false, []string{}
	got, err = s.UpdateApplication(ctx, app.ID, admin.ApplicationChange{Name: &name, StrictSessions: &strict, AllowedOrigins: &origins})
	if err != nil || got.Name != "web shop" || got.Settings.StrictSessions || len(got.Settings.AllowedOrigins) != 0 || got.Settings.RateLimit != 5 {
		t.Fatalf("update: %+v %v", got, err)
	}
	neg := -1
	if _, err := s.UpdateApplication(ctx, app.ID, admin.ApplicationChange{RateBurst: &neg}); code(err) != "invalid_rate" {
		t.Fatalf("negative burst: %v", err)
	}
	if _, err := s.UpdateApplication(ctx, uuid.New(), admin.ApplicationChange{Name: &name}); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}

	caller := uuid.New()
	got, err = s.Disable(ctx, app.ID, caller)
	if err != nil || got.DisabledAt == nil {
		t.Fatalf("disable: %+v %v", got, err)
	}
	again, _ := s.Disable(ctx, app.ID, caller)
	if again.DisabledAt == nil || *again.DisabledAt != *got.DisabledAt {
		t.Fatalf("disabling twice moved disabled_at: %v then %v", got.DisabledAt, again.DisabledAt)
	}
	if _, err := s.Disable(ctx, app.ID, app.ID); !errors.Is(err, admin.ErrOwnApplication) {
		t.Fatalf("disable own application: %v", err)
	}
	if got, err = s.Enable(ctx, app.ID); err != nil || got.DisabledAt != nil {
		t.Fatalf("enable: %+v %v", got, err)
	}
	if _, err := s.Enable(ctx, uuid.New()); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("enable unknown: %v", err)
	}

	// Keyset pagination walks every application once.
	for i := range 4 {
		if _, err := s.CreateApplication(ctx, admin.NewApplication{Name: "app " + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []uuid.UUID
	cursor := ""
	for pages := 0; ; pages++ {
		apps, links, err := s.Applications(ctx, paging.Request{Limit: 2, Cursor: cursor})
		if err != nil || pages > 5 {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, a := range apps {
			seen = append(seen, a.ID)
		}
		if links.Next == nil {
			break
		}
		cursor = *links.Next
	}
	if len(seen) != 5 || seen[0] != app.ID {
		t.Fatalf("listed %v", seen)
	}
	if _, _, err := s.Applications(ctx, paging.Request{Cursor: "nope"}); !errors.Is(err, paging.ErrInvalidCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestKeysLifecycle(t *testing.T) {
	ctx := context.Background()
	s, db := newAdmin(t)
	keys, _ := auth.NewPGStore(db)
	app, err := s.CreateApplication(ctx, admin.NewApplication{Name: "shop", Settings: admin.Settings{RateLimit: 3}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.CreateKey(ctx, app.ID, admin.NewKey{Scopes: []auth.Scope{auth.ScopeWrite}, Label: "site"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateKey(ctx, app.ID, admin.NewKey{Scopes: []auth.Scope{auth.ScopeAdmin, auth.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.Secret, "eye_w_") || w.Prefix != w.Secret[:10] || !strings.HasPrefix(r.Secret, "eye_a_") ||
		w.ApplicationID != app.ID || w.Label != "site" || w.ExpiresAt != nil || w.RevokedAt != nil {
		t.Fatalf("created %+v / %+v", w, r)
	}
	p, err := keys.LookupKey(ctx, auth.HashKey(w.Secret))
	if err != nil || p.KeyID != w.ID || p.AppID != app.ID || p.Settings.RateLimit != 3 || !p.Has(auth.ScopeWrite) {
		t.Fatalf("lookup of a created key: %+v %v", p, err)
	}
	if _, err := s.CreateKey(ctx, uuid.New(), admin.NewKey{Scopes: []auth.Scope{auth.ScopeRead}}); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("key for an unknown application: %v", err)
	}
	if _, err := s.CreateKey(ctx, app.ID, admin.NewKey{Scopes: []auth.Scope{"root"}}); code(err) != "invalid_scope" {
		t.Fatalf("unknown scope: %v", err)
	}

	list, err := s.Keys(ctx, app.ID)
	if err != nil || len(list) != 2 || list[0].ID != w.ID || list[1].ID != r.ID || list[0].Prefix != w.Prefix {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := s.Keys(ctx, uuid.New()); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("keys of an unknown application: %v", err)
	}

	// Rotation: the new key works, the old one until its overlap ends.
	rot, err := s.RotateKey(ctx, w.ID, "1h")
	if err != nil {
		t.Fatal(err)
	}
	if rot.ID == w.ID || rot.ApplicationID != app.ID || rot.Label != "site" || !slices.Equal(rot.Scopes, w.Scopes) ||
		!strings.HasPrefix(rot.Secret, "eye_w_") || rot.Previous.ID != w.ID || rot.Previous.ExpiresAt == nil ||
		time.Until(rot.Previous.ExpiresAt.Time) < 59*time.Minute || time.Until(rot.Previous.ExpiresAt.Time) > 61*time.Minute {
		t.Fatalf("rotated %+v", rot)
	}
	for _, k := range []string{w.Secret, rot.Secret} {
		if _, err := keys.LookupKey(ctx, auth.HashKey(k)); err != nil {
			t.Fatalf("during the overlap %s: %v", k[:10], err)
		}
	}
	// Rotating again never extends the old key's life.
	rot2, err := s.RotateKey(ctx, w.ID, "24h")
	if err != nil || !rot2.Previous.ExpiresAt.Equal(rot.Previous.ExpiresAt.Time) {
		t.Fatalf("second rotation: %+v %v", rot2.Previous, err)
	}
	// The default overlap, then zero: the old key ends now.
	rot3, err := s.RotateKey(ctx, rot.ID, "")
	if err != nil || time.Until(rot3.Previous.ExpiresAt.Time) < 59*time.Minute {
		t.Fatalf("default overlap: %+v %v", rot3.Previous, err)
	}
	if _, err := s.RotateKey(ctx, w.ID, "0s"); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.LookupKey(ctx, auth.HashKey(w.Secret)); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("old key after a zero overlap: %v", err)
	}
	if _, err := s.RotateKey(ctx, w.ID, "1h"); !errors.Is(err, admin.ErrKeyExpired) {
		t.Fatalf("rotate an expired key: %v", err)
	}
	if _, err := s.RotateKey(ctx, rot.ID, "-1h"); code(err) != "invalid_overlap" {
		t.Fatalf("negative overlap: %v", err)
	}
	if _, err := s.RotateKey(ctx, uuid.New(), ""); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("rotate unknown: %v", err)
	}

	// Revocation.
	rev, err := s.RevokeKey(ctx, r.ID)
	if err != nil || rev.RevokedAt == nil {
		t.Fatalf("revoke: %+v %v", rev, err)
	}
	if _, err := keys.LookupKey(ctx, auth.HashKey(r.Secret)); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("revoked key: %v", err)
	}
	again, err := s.RevokeKey(ctx, r.ID)
	if err != nil || !again.RevokedAt.Equal(rev.RevokedAt.Time) {
		t.Fatalf("revoke twice: %+v %v", again, err)
	}
	if _, err := s.RotateKey(ctx, r.ID, ""); !errors.Is(err, admin.ErrKeyRevoked) {
		t.Fatalf("rotate a revoked key: %v", err)
	}
	if _, err := s.RevokeKey(ctx, uuid.New()); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}

	// Key material is nowhere in the database.
	var n int
	for _, k := range []string{w.Secret, r.Secret, rot.Secret} {
		db.Get(&n, `SELECT count(*) FROM api_keys WHERE position($1::bytea IN hash) > 0 OR prefix = $2 OR label = $2`, []byte(k), k)
		if n != 0 {
			t.Fatal("key material stored")
		}
	}

	// A disabled application's keys stop working; enabled, they work again.
	if _, err := s.Disable(ctx, app.ID, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.LookupKey(ctx, auth.HashKey(rot2.Secret)); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("key of a disabled application: %v", err)
	}
	s.Enable(ctx, app.ID)
	if _, err := keys.LookupKey(ctx, auth.HashKey(rot2.Secret)); err != nil {
		t.Fatalf("key of a re-enabled application: %v", err)
	}
}

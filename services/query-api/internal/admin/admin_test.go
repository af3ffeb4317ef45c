package admin

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
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

func newStore(t *testing.T) (*Store, *sqlx.DB) {
	t.Helper()
	db, err := pg.Open(context.Background(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := NewStore(db, Config{Timeout: 5 * time.Second, RotationOverlap: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func code(err error) string {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func TestOrigins(t *testing.T) {
	for in, want := range map[string]string{
		"*":                          "*",
		"https://shop.example":       "https://shop.example",
		"HTTPS://Shop.Example":       "https://shop.example",
		"http://localhost:3000":      "http://localhost:3000",
		"https://shop.example:443":   "https://shop.example",
		"http://shop.example:80":     "http://shop.example",
		"http://[::1]:8080":          "http://[::1]:8080",
		"chrome-extension://abcdef":  "chrome-extension://abcdef",
		"https://shop.example/":      "",
		"https://shop.example/path":  "",
		"shop.example":               "",
		"https://":                   "",
		"https://user@shop.example":  "",
		"https://shop.example?x=1":   "",
		"https://shop.example#top":   "",
		"https://*.shop.example":     "",
		"https://shop.example:0":     "",
		"https://shop.example:99999": "",
		"https://shop.example:":      "",
		"https://shop example":       "",
		"":                           "",
		"**":                         "",
	} {
		got, err := canonicalOrigin(in)
		if want == "" {
			if code(err) != "invalid_origin" {
				t.Errorf("%q: accepted as %q (%v)", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
}

func TestInputRules(t *testing.T) {
	if _, err := validName("  "); code(err) != "invalid_name" {
		t.Errorf("blank name: %v", err)
	}
	if n, err := validName("  shop "); n != "shop" || err != nil {
		t.Errorf("name is trimmed: %q %v", n, err)
	}
	if _, err := validName(strings.Repeat("x", MaxNameLen+1)); code(err) != "invalid_name" {
		t.Errorf("long name: %v", err)
	}
	for _, s := range []Settings{{RateLimit: -1}, {RateBurst: -1}, {RateLimit: 2e9}} {
		if _, err := s.normalize(); code(err) != "invalid_rate" {
			t.Errorf("%+v: %v", s, err)
		}
	}
	s, err := Settings{AllowedOrigins: []string{"https://a.example", "HTTPS://A.EXAMPLE", "*"}}.normalize()
	if err != nil || !slices.Equal(s.AllowedOrigins, []string{"https://a.example", "*"}) {
		t.Errorf("origins deduplicated: %+v %v", s, err)
	}
	for _, scopes := range [][]auth.Scope{nil, {"owner"}, {auth.ScopeWrite, auth.ScopeRead}, {auth.ScopeWrite, auth.ScopeAdmin}} {
		if _, err := (NewKey{Scopes: scopes}).normalize(); code(err) != "invalid_scope" {
			t.Errorf("scopes %v: %v", scopes, err)
		}
	}
	k, err := NewKey{Scopes: []auth.Scope{auth.ScopeAdmin, auth.ScopeRead, auth.ScopeAdmin}, Label: " ops "}.normalize()
	if err != nil || !slices.Equal(k.Scopes, []auth.Scope{auth.ScopeRead, auth.ScopeAdmin}) || k.Label != "ops" {
		t.Errorf("scopes normalised: %+v %v", k, err)
	}
	for in, want := range map[string]time.Duration{"": 7 * time.Minute, "24h": 24 * time.Hour, "0s": 0, "90m": 90 * time.Minute} {
		if d, err := ParseOverlap(in, 7*time.Minute); d != want || err != nil {
			t.Errorf("overlap %q: %s %v", in, d, err)
		}
	}
	for _, in := range []string{"-1h", "tomorrow", "9000h", "24"} {
		if _, err := ParseOverlap(in, time.Hour); code(err) != "invalid_overlap" {
			t.Errorf("overlap %q: %v", in, err)
		}
	}
}

func TestApplications(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	app, err := s.CreateApplication(ctx, NewApplication{Name: "shop",
		Settings: Settings{AllowedOrigins: []string{"https://Shop.example"}, RateLimit: 5, RateBurst: 10, StrictSessions: true}})
	if err != nil {
		t.Fatal(err)
	}
	if app.ID.Version() != 7 || app.Name != "shop" || app.DisabledAt != nil || app.CreatedAt.IsZero() ||
		!slices.Equal(app.Settings.AllowedOrigins, []string{"https://shop.example"}) || app.Settings.RateBurst != 10 || !app.Settings.StrictSessions {
		t.Fatalf("created %+v", app)
	}
	if _, err := s.CreateApplication(ctx, NewApplication{Name: ""}); code(err) != "invalid_name" {
		t.Fatalf("empty name: %v", err)
	}
	got, err := s.Application(ctx, app.ID)
	if err != nil || got.Name != "shop" || got.Settings.RateLimit != 5 {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := s.Application(ctx, uuid.New()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}

	name, strict, origins := "web shop", false, []string{}
	got, err = s.UpdateApplication(ctx, app.ID, ApplicationChange{Name: &name, StrictSessions: &strict, AllowedOrigins: &origins})
	if err != nil || got.Name != "web shop" || got.Settings.StrictSessions || len(got.Settings.AllowedOrigins) != 0 || got.Settings.RateLimit != 5 {
		t.Fatalf("update: %+v %v", got, err)
	}
	neg := -1
	if _, err := s.UpdateApplication(ctx, app.ID, ApplicationChange{RateBurst: &neg}); code(err) != "invalid_rate" {
		t.Fatalf("negative burst: %v", err)
	}
	if _, err := s.UpdateApplication(ctx, uuid.New(), ApplicationChange{Name: &name}); !errors.Is(err, ErrNotFound) {
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
	if _, err := s.Disable(ctx, app.ID, app.ID); !errors.Is(err, ErrOwnApplication) {
		t.Fatalf("disable own application: %v", err)
	}
	if got, err = s.Enable(ctx, app.ID); err != nil || got.DisabledAt != nil {
		t.Fatalf("enable: %+v %v", got, err)
	}
	if _, err := s.Enable(ctx, uuid.New()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("enable unknown: %v", err)
	}

	// Keyset pagination walks every application once.
	for i := range 4 {
		if _, err := s.CreateApplication(ctx, NewApplication{Name: "app " + string(rune('a'+i))}); err != nil {
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
	s, db := newStore(t)
	keys, _ := auth.NewPGStore(db)
	app, err := s.CreateApplication(ctx, NewApplication{Name: "shop", Settings: Settings{RateLimit: 3}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.CreateKey(ctx, app.ID, NewKey{Scopes: []auth.Scope{auth.ScopeWrite}, Label: "site"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateKey(ctx, app.ID, NewKey{Scopes: []auth.Scope{auth.ScopeAdmin, auth.ScopeRead}})
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
	if _, err := s.CreateKey(ctx, uuid.New(), NewKey{Scopes: []auth.Scope{auth.ScopeRead}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key for an unknown application: %v", err)
	}
	if _, err := s.CreateKey(ctx, app.ID, NewKey{Scopes: []auth.Scope{"root"}}); code(err) != "invalid_scope" {
		t.Fatalf("unknown scope: %v", err)
	}

	list, err := s.Keys(ctx, app.ID)
	if err != nil || len(list) != 2 || list[0].ID != w.ID || list[1].ID != r.ID || list[0].Prefix != w.Prefix {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := s.Keys(ctx, uuid.New()); !errors.Is(err, ErrNotFound) {
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
	if _, err := s.RotateKey(ctx, w.ID, "1h"); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("rotate an expired key: %v", err)
	}
	if _, err := s.RotateKey(ctx, rot.ID, "-1h"); code(err) != "invalid_overlap" {
		t.Fatalf("negative overlap: %v", err)
	}
	if _, err := s.RotateKey(ctx, uuid.New(), ""); !errors.Is(err, ErrNotFound) {
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
	if _, err := s.RotateKey(ctx, r.ID, ""); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("rotate a revoked key: %v", err)
	}
	if _, err := s.RevokeKey(ctx, uuid.New()); !errors.Is(err, ErrNotFound) {
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

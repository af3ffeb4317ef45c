package auth

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

func TestStrictTypesSetting(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	app := uuid.New()
	if err := s.EnsureApplication(ctx, app, "typed"); err != nil {
		t.Fatal(err)
	}
	set, err := ReadSettings(ctx, db, app)
	if err != nil || set[app].StrictTypes {
		t.Fatalf("default: %+v %v", set, err)
	}
	if _, err := db.Exec(`UPDATE applications SET strict_types = true, rate_burst = 7 WHERE id = $1`, app); err != nil {
		t.Fatal(err)
	}
	if set, err = ReadSettings(ctx, db, app); err != nil || !set[app].StrictTypes || set[app].RateBurst != 7 {
		t.Fatalf("strict: %+v %v", set, err)
	}
	key, _ := putKey(t, s, db, app, ScopeWrite)
	if p, err := s.LookupKey(ctx, HashKey(key)); err != nil || !p.Settings.StrictTypes {
		t.Fatalf("principal: %+v %v", p, err)
	}
	if set, err := ReadSettings(ctx, db, uuid.New()); err != nil || len(set) != 0 {
		t.Fatalf("unknown application: %+v %v", set, err)
	}
}

func TestReadSettings(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	strict, plain, missing := uuid.New(), uuid.New(), uuid.New()
	for _, app := range []uuid.UUID{strict, plain} {
		if err := s.EnsureApplication(ctx, app, "app"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`UPDATE applications SET strict_sessions = true, allowed_origins = '{https://a.example}', disabled_at = now() WHERE id = $1`, strict); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSettings(ctx, db, strict, plain, missing, strict)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[strict].StrictSessions || len(got[strict].AllowedOrigins) != 1 || got[plain].StrictSessions {
		t.Fatalf("settings: %+v", got)
	}
}

package postgres

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

func TestStrictTypes(t *testing.T) {
	ctx := context.Background()
	db, err := pg.OpenMigrated(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	strict, lax := uuid.New(), uuid.New()
	db.MustExec(`INSERT INTO applications (id, name, strict_types) VALUES ($1, 'strict', true), ($2, 'lax', false)`, strict, lax)
	for app, want := range map[uuid.UUID]bool{strict: true, lax: false, uuid.New(): false} {
		if got, err := s.StrictTypes(ctx, app); err != nil || got != want {
			t.Errorf("application %s: %v %v, want %v", app, got, err, want)
		}
	}
}

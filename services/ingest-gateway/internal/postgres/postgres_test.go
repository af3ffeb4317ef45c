package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

// TestRegisterConflict: registering is idempotent for the session's
// application, and another application's session is the domain's
// ErrSessionConflict.
func TestRegisterConflict(t *testing.T) {
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
	app, id := uuid.New(), uuid.New()
	for range 2 {
		if err := s.Register(ctx, app, id, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Register(ctx, uuid.New(), id, time.Now()); !errors.Is(err, ingest.ErrSessionConflict) {
		t.Fatalf("another application's session: %v", err)
	}
}

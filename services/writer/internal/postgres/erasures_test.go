package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestErased(t *testing.T) {
	st, db := newStore(t)
	erased, kept := uuid.New(), uuid.New()
	at := time.Date(2021, 6, 15, 0, 0, 0, 0, time.UTC)
	for _, when := range []time.Time{at.Add(-time.Hour), at} { // erased twice: the latest counts
		db.MustExec(`INSERT INTO session_erasures (id, session_id, app_id, actor_key_id, actor_app_id, requested_at, events, errors, audit_entries)
			VALUES ($1, $2, $3, $3, $3, $4, 0, 0, 0)`, uuid.New(), erased, uuid.New(), when)
	}
	got, err := st.Erased(context.Background(), []uuid.UUID{erased, kept, erased, kept})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[erased].Equal(at) {
		t.Fatalf("erased %v", got)
	}
}

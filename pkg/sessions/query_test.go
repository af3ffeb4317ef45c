package sessions

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/event"
)

// TestGetAndPage: a session is read by id, within an application when
// asked; pages come in created_at, id order either way, after a position,
// filtered by application and creation time.
func TestGetAndPage(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	app, other := uuid.New(), uuid.New()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ids := make([]uuid.UUID, 4)
	for i := range ids {
		ids[i] = uuid.New()
		owner := app
		if i == 3 {
			owner = other
		}
		if err := s.Register(ctx, owner, ids[i], t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := s.Get(ctx, ids[0], nil); err != nil || r.AppID != app || !r.CreatedAt.Equal(t0) || !r.RegisteredAt.Valid {
		t.Fatalf("get: %+v %v", r, err)
	}
	if _, err := s.Get(ctx, ids[3], &app); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another application's session: %v", err)
	}
	page := func(q PageQuery) []uuid.UUID {
		t.Helper()
		rows, err := s.Page(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]uuid.UUID, len(rows))
		for i, r := range rows {
			out[i] = r.ID
		}
		return out
	}
	eq := func(got []uuid.UUID, want ...uuid.UUID) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
	if got := page(PageQuery{Limit: 10}); !eq(got, ids[3], ids[2], ids[1], ids[0]) {
		t.Fatalf("newest first: %v", got)
	}
	if got := page(PageQuery{Apps: []uuid.UUID{app}, Limit: 2}); !eq(got, ids[2], ids[1]) {
		t.Fatalf("one application, limited: %v", got)
	}
	if got := page(PageQuery{Apps: []uuid.UUID{app, other}, Limit: 10}); len(got) != 0 {
		t.Fatalf("two applications at once: %v", got)
	}
	from, to := t0.Add(time.Minute), t0.Add(2*time.Minute)
	if got := page(PageQuery{From: &from, To: &to, Ascending: true, Limit: 10}); !eq(got, ids[1], ids[2]) {
		t.Fatalf("created between, oldest first: %v", got)
	}
	if got := page(PageQuery{After: &Position{CreatedAt: t0.Add(2 * time.Minute), ID: ids[2]}, Limit: 10}); !eq(got, ids[1], ids[0]) {
		t.Fatalf("after a position: %v", got)
	}
}

// TestRecountAndDelete: Recount sets a session's aggregates from its
// stored events in the caller's transaction; Delete removes the session
// and says whether it existed.
func TestRecountAndDelete(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	app, id := uuid.New(), uuid.New()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The session counts 3 events; only 2 are stored (one was deleted).
	if err := Fold(ctx, tx, Tally([]event.Event{
		{SessionID: id, AppID: app, Timestamp: t0, ReceivedAt: t0},
		{SessionID: id, AppID: app, Timestamp: t0.Add(time.Hour), ReceivedAt: t0},
		{SessionID: id, AppID: app, Timestamp: t0.Add(2 * time.Hour), ReceivedAt: t0},
	})); err != nil {
		t.Fatal(err)
	}
	for _, ts := range []time.Time{t0.Add(time.Minute), t0.Add(time.Hour)} {
		if _, err := tx.Exec(`INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at) VALUES ($1, $2, $3, 'c', 'n', '{}', $4, $4)`,
			uuid.New(), app, id, ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := Recount(ctx, tx, id); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, id, nil)
	if err != nil || r.EventCount != 2 || !r.FirstEventAt.Time.Equal(t0.Add(time.Minute)) || !r.LastEventAt.Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("recounted: %+v %v", r, err)
	}
	for _, want := range []bool{true, false} {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := Lock(ctx, tx, id); err != nil {
			t.Fatal(err)
		}
		existed, err := Delete(ctx, tx, id)
		if err != nil || existed != want {
			t.Fatalf("delete: %v %v, want %v", existed, err, want)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

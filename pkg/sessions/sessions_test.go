package sessions

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

func newStore(t *testing.T) (*Store, *sqlx.DB) {
	t.Helper()
	db, err := pg.OpenMigrated(context.Background(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func TestRegisterAndLookup(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t)
	app, other := uuid.New(), uuid.New()
	reg, unregistered, missing := uuid.New(), uuid.New(), uuid.New()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	if err := s.Register(ctx, app, reg, at); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(ctx, app, reg, at.Add(time.Hour)); err != nil {
		t.Fatalf("registering again: %v", err)
	}
	if err := s.Register(ctx, other, reg, at); !errors.Is(err, ErrOtherApplication) {
		t.Fatalf("another application's session: %v", err)
	}
	// A session its events created, not registered.
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Fold(ctx, tx, Tally([]event.Event{{SessionID: unregistered, AppID: app, Timestamp: at, ReceivedAt: at}})); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(ctx, []uuid.UUID{reg, unregistered, missing, reg})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[reg] != (Known{AppID: app, Registered: true}) || got[unregistered] != (Known{AppID: app}) {
		t.Fatalf("lookup: %+v", got)
	}
	var registeredAt time.Time
	if err := db.Get(&registeredAt, `SELECT registered_at FROM sessions WHERE id = $1`, reg); err != nil || !registeredAt.Equal(at) {
		t.Fatalf("registered_at %v %v: registering again must keep the first time", registeredAt, err)
	}
}

func TestTallyAndFold(t *testing.T) {
	ctx := context.Background()
	_, db := newStore(t)
	app := uuid.New()
	a, b := uuid.MustParse("00000000-0000-4000-8000-00000000000a"), uuid.MustParse("00000000-0000-4000-8000-00000000000b")
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ev := func(session uuid.UUID, ts, recv int) event.Event {
		return event.Event{SessionID: session, AppID: app, Timestamp: t0.Add(time.Duration(ts) * time.Second), ReceivedAt: t0.Add(time.Duration(recv) * time.Second)}
	}
	acts := Tally([]event.Event{ev(b, 5, 9), ev(a, 3, 4), ev(b, 1, 7), ev(b, 8, 8)})
	want := []Activity{
		{SessionID: a, AppID: app, Received: t0.Add(4 * time.Second), First: t0.Add(3 * time.Second), Last: t0.Add(3 * time.Second), Events: 1},
		{SessionID: b, AppID: app, Received: t0.Add(7 * time.Second), First: t0.Add(time.Second), Last: t0.Add(8 * time.Second), Events: 3},
	}
	if len(acts) != 2 || acts[0] != want[0] || acts[1] != want[1] {
		t.Fatalf("tally:\n%+v\nwant\n%+v", acts, want)
	}
	fold := func(acts []Activity, commit bool) {
		t.Helper()
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		if err := Fold(ctx, tx, acts); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	fold(acts, true)
	fold(Tally([]event.Event{ev(b, 0, 20), ev(b, 30, 20)}), true)
	fold(Tally([]event.Event{ev(b, -100, 20)}), false) // rolled back: not counted
	// Another application's events never change a session.
	fold([]Activity{{SessionID: a, AppID: uuid.New(), Received: t0, First: t0, Last: t0.Add(time.Hour), Events: 5}}, true)
	var rows []struct {
		ID      uuid.UUID `db:"id"`
		Created time.Time `db:"created_at"`
		First   time.Time `db:"first_event_at"`
		Last    time.Time `db:"last_event_at"`
		Count   int64     `db:"event_count"`
	}
	if err := db.Select(&rows, `SELECT id, created_at, first_event_at, last_event_at, event_count FROM sessions ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Count != 1 || !rows[0].Last.Equal(t0.Add(3*time.Second)) ||
		rows[1].Count != 5 || !rows[1].First.Equal(t0) || !rows[1].Last.Equal(t0.Add(30*time.Second)) || !rows[1].Created.Equal(t0.Add(7*time.Second)) {
		t.Fatalf("sessions: %+v", rows)
	}
}

package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

// newStore returns the query domain on a Store on a fresh database.
func newStore(t *testing.T) (*query.Service, *sqlx.DB) {
	t.Helper()
	db, err := pg.Open(context.Background(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := query.NewService(storeOn(t, db), event.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// storeOn returns a Store on db.
func storeOn(t *testing.T, db *sqlx.DB) *Store {
	t.Helper()
	s, err := NewStore(db, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func insert(t *testing.T, db *sqlx.DB, app, session uuid.UUID, ts time.Time) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	_, err := db.Exec(`INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at) VALUES ($1, $2, $3, 'c', 'n', '{"a":1}', $4, now())`, id, app, session, ts)
	if err == nil {
		_, err = db.Exec(`INSERT INTO sessions (id, app_id, created_at, event_count) VALUES ($1, $2, now(), 0) ON CONFLICT DO NOTHING`, session, app)
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestConcurrentPatchesAllApply: edits of different fields racing on one
// event all survive; none silently overwrites another.
func TestConcurrentPatchesAllApply(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	id := insert(t, db, uuid.New(), uuid.New(), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each patch sets data to the current data plus its own key: a
			// lost update would drop a key.
			for {
				cur, err := s.Event(ctx, query.Scope{}, id)
				if err != nil {
					t.Error(err)
					return
				}
				var data map[string]any
				json.Unmarshal(cur.Data, &data)
				data[fmt.Sprint("k", i)] = i
				b, _ := json.Marshal(data)
				_, err = s.Patch(ctx, query.Scope{}, query.Actor{}, id, cur.ETag(), map[string]json.RawMessage{"data": b})
				if errors.Is(err, query.ErrPrecondition) {
					continue // somebody else won: read again
				}
				if err != nil {
					t.Error(err)
				}
				return
			}
		}()
	}
	wg.Wait()
	e, err := s.Event(ctx, query.Scope{}, id)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	json.Unmarshal(e.Data, &data)
	if len(data) != n+1 || e.Version != n+1 {
		t.Fatalf("after %d concurrent patches: version %d, data %s", n, e.Version, e.Data)
	}
}

func TestScopeHidesOtherApplications(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	mine, theirs := uuid.New(), uuid.New()
	insert(t, db, mine, uuid.New(), time.Now().Add(-time.Hour))
	other := insert(t, db, theirs, uuid.New(), time.Now().Add(-time.Hour))
	if _, err := s.Event(ctx, query.Scope{AppID: mine}, other); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("another application's event: %v", err)
	}
	if _, err := s.Patch(ctx, query.Scope{AppID: mine}, query.Actor{AppID: mine}, other, "", map[string]json.RawMessage{"name": json.RawMessage(`"x"`)}); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("patching another application's event: %v", err)
	}
	list, _, err := s.Events(ctx, query.Scope{AppID: mine}, query.EventFilter{}, paging.Request{})
	if err != nil || len(list) != 1 || list[0].ApplicationID != mine {
		t.Fatalf("list: %v %+v", err, list)
	}
	all, _, _ := s.Events(ctx, query.Scope{}, query.EventFilter{}, paging.Request{})
	if len(all) != 2 {
		t.Fatalf("admin sees %d events", len(all))
	}
}

// TestPaginationStableUnderInserts: rows inserted while a client pages
// through neither repeat nor shift the rows it has yet to see.
func TestPaginationStableUnderInserts(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	app, session := uuid.New(), uuid.New()
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		insert(t, db, app, session, t0.Add(time.Duration(i)*time.Second))
	}
	seen := map[uuid.UUID]bool{}
	cursor := ""
	for page := 0; ; page++ {
		list, links, err := s.Events(ctx, query.Scope{}, query.EventFilter{Order: query.Oldest}, paging.Request{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			if seen[e.ID] {
				t.Fatalf("event %s seen twice", e.ID)
			}
			seen[e.ID] = true
		}
		if links.Next == nil {
			break
		}
		cursor = *links.Next
		// Newer rows arrive and older ones are backfilled while paging.
		insert(t, db, app, session, t0.Add(time.Hour+time.Duration(page)*time.Second))
		insert(t, db, app, session, t0.Add(-time.Hour))
	}
	var after int
	db.Get(&after, `SELECT count(*) FROM events WHERE "timestamp" >= $1`, t0)
	if len(seen) != after {
		t.Fatalf("saw %d events, %d exist at or after the start", len(seen), after)
	}
}

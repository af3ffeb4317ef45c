package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// row is an event to insert directly.
type row struct {
	app, session   uuid.UUID
	category, name string
	ts             time.Time
}

func insertRows(t *testing.T, db *sqlx.DB, rows ...row) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = uuid.Must(uuid.NewV7())
		if _, err := db.Exec(`INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at) VALUES ($1, $2, $3, $4, $5, '{"a":1}', $6, now())`,
			ids[i], r.app, r.session, r.category, r.name, r.ts); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO sessions (id, app_id, created_at, event_count) VALUES ($1, $2, now(), 0) ON CONFLICT DO NOTHING`, r.session, r.app); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func insertError(t *testing.T, db *sqlx.DB, app uuid.UUID, session *uuid.UUID) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if _, err := db.Exec(`INSERT INTO errors (id, app_id, session_id, stage, reason_codes, reasons, payload, received_at, detected_at)
		VALUES ($1, $2, $3, 'validator', '{empty_data}', '[{"code":"empty_data","message":"m"}]', 'x', now(), now())`, id, app, session); err != nil {
		t.Fatal(err)
	}
	return id
}

func count(t *testing.T, db *sqlx.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, q, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

// walk pages through list with limit n following next and returns every
// event seen; it then follows previous back from the last page and checks
// that it meets the same pages in reverse.
func walk(t *testing.T, n int, list func(paging.Request) ([]query.Event, paging.Links, error)) []query.Event {
	t.Helper()
	var pages [][]query.Event
	var last paging.Links
	cursor := ""
	for len(pages) < 1000 {
		page, links, err := list(paging.Request{Limit: n, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > n || (len(page) < n && links.Next != nil) {
			t.Fatalf("page of %d events, limit %d, next %v", len(page), n, links.Next)
		}
		if (cursor == "") != (links.Previous == nil) {
			t.Fatalf("page %d: previous %v", len(pages), links.Previous)
		}
		pages, last = append(pages, page), links
		if links.Next == nil {
			break
		}
		cursor = *links.Next
	}
	if last.Next != nil {
		t.Fatal("pagination does not end")
	}
	for i := len(pages) - 2; i >= 0; i-- {
		if last.Previous == nil {
			t.Fatalf("no previous page before page %d", i+1)
		}
		page, links, err := list(paging.Request{Limit: n, Cursor: *last.Previous})
		if err != nil {
			t.Fatal(err)
		}
		if idList(page) != idList(pages[i]) || links.Next == nil {
			t.Fatalf("going back, page %d is %s (next %v), was %s", i, idList(page), links.Next, idList(pages[i]))
		}
		last = links
	}
	if len(pages) > 1 && last.Previous != nil {
		t.Fatalf("the first page, reached going back, has a previous page")
	}
	var all []query.Event
	for _, p := range pages {
		all = append(all, p...)
	}
	return all
}

func idList(events []query.Event) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString(e.ID.String()[:8] + " ")
	}
	return b.String()
}

func ids(events []query.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func TestTimelineInTheOrderThingsHappened(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	app, session := uuid.New(), uuid.New()
	t0 := time.Date(2021, 6, 15, 0, 0, 0, 0, time.UTC)
	// Inserted out of order, with a tie on the timestamp, beside another
	// session's events.
	var want []row
	for _, sec := range []int{30, 5, 20, 5, 0, 10, 25} {
		want = append(want, row{app, session, "c", "n", t0.Add(time.Duration(sec) * time.Second)})
	}
	got := insertRows(t, db, want...)
	insertRows(t, db, row{app, uuid.New(), "c", "n", t0.Add(7 * time.Second)})

	timeline := walk(t, 2, func(p paging.Request) ([]query.Event, paging.Links, error) {
		return s.Timeline(ctx, query.Scope{AppID: app}, session, p)
	})
	if len(timeline) != len(want) {
		t.Fatalf("timeline has %d events, want %d", len(timeline), len(want))
	}
	for i, e := range timeline {
		if e.SessionID != session || !slices.Contains(got, e.ID) {
			t.Fatalf("event %d: %+v is not one of the session's", i, e)
		}
		if i > 0 {
			prev := timeline[i-1]
			if e.Timestamp.Before(prev.Timestamp.Time) || e.Timestamp.Equal(prev.Timestamp.Time) && strings.Compare(e.ID.String(), prev.ID.String()) < 0 {
				t.Fatalf("event %d (%s %s) comes before event %d (%s %s)", i, e.Timestamp, e.ID, i-1, prev.Timestamp, prev.ID)
			}
		}
	}

	if _, _, err := s.Timeline(ctx, query.Scope{AppID: uuid.New()}, session, paging.Request{}); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("another application's session: %v", err)
	}
	if _, _, err := s.Timeline(ctx, query.Scope{}, uuid.New(), paging.Request{}); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("an unknown session: %v", err)
	}
	registered := uuid.New()
	db.MustExec(`INSERT INTO sessions (id, app_id, created_at, registered_at) VALUES ($1, $2, now(), now())`, registered, app)
	if list, links, err := s.Timeline(ctx, query.Scope{AppID: app}, registered, paging.Request{}); err != nil || len(list) != 0 || links != (paging.Links{}) {
		t.Fatalf("a session without events: %v %v %+v", err, list, links)
	}
}

// TestAdminListsMergeApplications: without an application filter an admin's
// list is read application by application and merged; pages must still be
// exactly the global (timestamp, id) order, in both directions and with
// filters.
func TestAdminListsMergeApplications(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	apps := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	t0 := time.Date(2021, 6, 15, 0, 0, 0, 0, time.UTC)
	var rows []row
	for i := range 40 {
		cat := []string{"page", "form"}[i%2]
		rows = append(rows, row{apps[i%3], uuid.New(), cat, []string{"view", "click", "submit"}[i%3], t0.Add(time.Duration(i*7%23) * time.Minute)})
	}
	insertRows(t, db, rows...)

	for _, c := range []struct {
		name string
		f    query.EventFilter
	}{
		{"all, newest first", query.EventFilter{}},
		{"all, oldest first", query.EventFilter{Order: query.Oldest}},
		{"a category", query.EventFilter{Category: "form"}},
		{"a name over a range", query.EventFilter{Name: "click", From: ptr(t0.Add(3 * time.Minute)), To: ptr(t0.Add(15 * time.Minute)), Order: query.Oldest}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var want []query.Event
			for _, app := range apps {
				f := c.f
				f.Application = &app
				want = append(want, walk(t, 1000, func(p paging.Request) ([]query.Event, paging.Links, error) { return s.Events(ctx, query.Scope{}, f, p) })...)
			}
			slices.SortFunc(want, func(a, b query.Event) int {
				if n := a.Timestamp.Compare(b.Timestamp.Time); n != 0 {
					return n
				}
				return strings.Compare(a.ID.String(), b.ID.String())
			})
			if c.f.Order != query.Oldest {
				slices.Reverse(want)
			}
			got := walk(t, 3, func(p paging.Request) ([]query.Event, paging.Links, error) {
				return s.Events(ctx, query.Scope{}, c.f, p)
			})
			if len(want) == 0 || !slices.Equal(ids(got), ids(want)) {
				t.Fatalf("merged pages:\n%v\nwant\n%v", ids(got), ids(want))
			}
		})
	}

	// The application filter narrows an admin's view, and gives a read key
	// nothing outside its own application.
	mine, _, err := s.Events(ctx, query.Scope{}, query.EventFilter{Application: &apps[1]}, paging.Request{Limit: 1000})
	if err != nil || len(mine) == 0 {
		t.Fatalf("admin, one application: %v %d", err, len(mine))
	}
	for _, e := range mine {
		if e.ApplicationID != apps[1] {
			t.Fatalf("event of %s in application %s's list", e.ApplicationID, apps[1])
		}
	}
	if own, _, err := s.Events(ctx, query.Scope{AppID: apps[1]}, query.EventFilter{Application: &apps[1]}, paging.Request{}); err != nil || len(own) != len(mine) {
		t.Fatalf("read key filtering its own application: %v %d", err, len(own))
	}
	if other, _, err := s.Events(ctx, query.Scope{AppID: apps[0]}, query.EventFilter{Application: &apps[1]}, paging.Request{}); err != nil || len(other) != 0 {
		t.Fatalf("read key filtering another application: %v %d events", err, len(other))
	}
}

func ptr[T any](v T) *T { return &v }

func TestStatsBucketsAndGroups(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	app, other, session := uuid.New(), uuid.New(), uuid.New()
	t0 := time.Date(2021, 6, 15, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	insertRows(t, db,
		row{app, session, "page", "view", at(0)},
		row{app, session, "page", "view", at(30 * time.Second)},
		row{app, session, "page", "click", at(59*time.Second + 999999*time.Microsecond)},
		row{app, session, "form", "submit", at(time.Minute)},
		row{app, uuid.New(), "page", "view", at(time.Hour + 5*time.Minute)},
		row{app, uuid.New(), "page", "view", at(26 * time.Hour)},
		row{other, uuid.New(), "page", "view", at(10 * time.Second)},
		row{app, uuid.New(), "page", "view", at(-time.Second)}, // before the range
	)
	day := query.StatsFilter{From: t0, To: t0.Add(48 * time.Hour)}
	type want struct {
		bucket         time.Time
		category, name string
		n              int64
	}
	check := func(t *testing.T, sc query.Scope, f query.StatsFilter, wants ...want) {
		t.Helper()
		got, err := s.Stats(ctx, sc, f)
		if err != nil {
			t.Fatal(err)
		}
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		if len(got) != len(wants) {
			t.Fatalf("%d counts, want %d: %+v", len(got), len(wants), got)
		}
		for i, w := range wants {
			g := got[i]
			if !g.Bucket.Equal(w.bucket) || str(g.Category) != w.category || str(g.Name) != w.name || g.Count != w.n ||
				(g.Category != nil) != f.ByCategory || (g.Name != nil) != f.ByName {
				t.Fatalf("count %d: %v %q %q %d, want %+v", i, g.Bucket, str(g.Category), str(g.Name), g.Count, w)
			}
		}
	}
	t.Run("minute buckets by category", func(t *testing.T) {
		f := day
		f.Bucket, f.ByCategory, f.To = query.Minute, true, t0.Add(2*time.Hour)
		check(t, query.Scope{AppID: app}, f,
			want{t0, "page", "", 3}, want{at(time.Minute), "form", "", 1}, want{at(65 * time.Minute), "page", "", 1})
	})
	t.Run("hour buckets by name", func(t *testing.T) {
		f := day
		f.Bucket, f.ByName = query.Hour, true
		check(t, query.Scope{AppID: app}, f,
			want{t0, "", "click", 1}, want{t0, "", "submit", 1}, want{t0, "", "view", 2},
			want{at(time.Hour), "", "view", 1}, want{at(26 * time.Hour), "", "view", 1})
	})
	t.Run("day buckets by category and name, UTC days", func(t *testing.T) {
		f := day
		f.Bucket, f.ByCategory, f.ByName = query.Day, true, true
		midnight := time.Date(2021, 6, 15, 0, 0, 0, 0, time.UTC)
		check(t, query.Scope{AppID: app}, f,
			want{midnight, "form", "submit", 1}, want{midnight, "page", "click", 1}, want{midnight, "page", "view", 3},
			want{midnight.Add(24 * time.Hour), "page", "view", 1})
	})
	t.Run("totals, inclusive bounds", func(t *testing.T) {
		f := query.StatsFilter{Bucket: query.Hour, From: t0, To: at(time.Minute)}
		check(t, query.Scope{AppID: app}, f, want{t0, "", "", 4})
	})
	t.Run("filters", func(t *testing.T) {
		f := day
		f.Bucket, f.Category, f.Name = query.Day, "page", "view"
		check(t, query.Scope{AppID: app}, f, want{t0.Truncate(24 * time.Hour), "", "", 3}, want{t0.Truncate(24 * time.Hour).Add(24 * time.Hour), "", "", 1})
		f = day
		f.Bucket, f.Session, f.ByCategory = query.Hour, &session, true
		check(t, query.Scope{}, f, want{t0, "form", "", 1}, want{t0, "page", "", 3})
	})
	t.Run("admin counts every application, or one", func(t *testing.T) {
		f := query.StatsFilter{Bucket: query.Hour, From: t0, To: at(59 * time.Minute)}
		check(t, query.Scope{}, f, want{t0, "", "", 5})
		f.Application = &other
		check(t, query.Scope{}, f, want{t0, "", "", 1})
		check(t, query.Scope{AppID: app}, f) // a read key filtering another application
	})
	t.Run("limits", func(t *testing.T) {
		if _, err := s.Stats(ctx, query.Scope{}, query.StatsFilter{Bucket: query.Minute, From: t0, To: t0.Add(query.MaxBuckets * time.Minute)}); !errors.Is(err, query.ErrTooManyBuckets) {
			t.Fatalf("%d minute buckets: %v", query.MaxBuckets+1, err)
		}
		if _, err := s.Stats(ctx, query.Scope{}, query.StatsFilter{Bucket: query.Minute, From: t0, To: t0.Add((query.MaxBuckets - 1) * time.Minute)}); err != nil {
			t.Fatalf("%d minute buckets: %v", query.MaxBuckets, err)
		}
		if _, err := s.Stats(ctx, query.Scope{}, query.StatsFilter{Bucket: query.Hour, From: t0, To: t0.Add(-time.Second)}); !errors.Is(err, query.ErrBadRange) {
			t.Fatalf("to before from: %v", err)
		}
		if _, err := s.Stats(ctx, query.Scope{}, query.StatsFilter{Bucket: "week", From: t0, To: t0}); !errors.Is(err, query.ErrBadRange) {
			t.Fatalf("unknown bucket: %v", err)
		}
	})
}

func TestEveryChangeIsAudited(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	app, session := uuid.New(), uuid.New()
	id := insertRows(t, db, row{app, session, "c", "n", time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)})[0]
	by := query.Actor{KeyID: uuid.New(), AppID: uuid.New()}

	v1, _ := s.Event(ctx, query.Scope{}, id)
	v2, err := s.Replace(ctx, query.Scope{}, by, id, v1.ETag(), map[string]json.RawMessage{
		"category": json.RawMessage(`"page"`), "name": json.RawMessage(`"view"`),
		"data": json.RawMessage(`{"b":2}`), "timestamp": json.RawMessage(`"2021-01-01 00:00:01"`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Patch(ctx, query.Scope{}, by, id, v1.ETag(), map[string]json.RawMessage{"name": json.RawMessage(`"x"`)}); !errors.Is(err, query.ErrPrecondition) {
		t.Fatalf("stale patch: %v", err)
	}
	v3, err := s.Patch(ctx, query.Scope{}, by, id, v2.ETag(), map[string]json.RawMessage{"name": json.RawMessage(`"click"`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, query.Scope{}, by, id, v3.ETag()); err != nil {
		t.Fatal(err)
	}

	var entries []query.AuditEntry
	cursor := ""
	for {
		page, links, err := s.Audit(ctx, id, paging.Request{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, page...)
		if links.Next == nil {
			break
		}
		cursor = *links.Next
	}
	if len(entries) != 3 {
		t.Fatalf("%d audit entries, want 3 (the refused patch writes none): %+v", len(entries), entries)
	}
	for i, w := range []struct {
		action        string
		before, after *query.Event
	}{{query.ActionReplace, &v1, &v2}, {query.ActionPatch, &v2, &v3}, {query.ActionDelete, &v3, nil}} {
		e := entries[i]
		if e.Action != w.action || e.EventID != id || e.SessionID != session || e.ActorKeyID != by.KeyID || e.ActorAppID != by.AppID || e.At.IsZero() {
			t.Fatalf("entry %d: %+v, want %s by %+v", i, e, w.action, by)
		}
		if e.Before == nil || e.Before.ETag() != w.before.ETag() || string(e.Before.Data) != string(w.before.Data) || e.Before.Name != w.before.Name {
			t.Fatalf("entry %d before: %+v, want %+v", i, e.Before, w.before)
		}
		if (w.after == nil) != (e.After == nil) || w.after != nil && (e.After.ETag() != w.after.ETag() || e.After.Name != w.after.Name || !e.After.Timestamp.Equal(w.after.Timestamp.Time)) {
			t.Fatalf("entry %d after: %+v, want %+v", i, e.After, w.after)
		}
		if i > 0 && e.At.Before(entries[i-1].At.Time) {
			t.Fatalf("entry %d is older than entry %d", i, i-1)
		}
	}
	if _, _, err := s.Audit(ctx, uuid.New(), paging.Request{}); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("audit of an unknown event: %v", err)
	}
	other := insertRows(t, db, row{app, session, "c", "n", time.Now().Add(-time.Hour)})[0]
	if list, _, err := s.Audit(ctx, other, paging.Request{}); err != nil || len(list) != 0 {
		t.Fatalf("audit of an unchanged event: %v %v", err, list)
	}
}

// publisher records what it is asked to publish, checking what Postgres
// holds at that moment, or fails.
type publisher struct {
	msgs  []contract.Message
	fail  error
	check func()
}

func (p *publisher) Publish(_ context.Context, msgs ...contract.Message) error {
	if p.check != nil {
		p.check()
	}
	if p.fail != nil {
		return p.fail
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func TestEraseSession(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	app, session, kept := uuid.New(), uuid.New(), uuid.New()
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := insertRows(t, db, row{app, session, "c", "n", t0}, row{app, session, "c", "n", t0.Add(time.Second)}, row{app, session, "c", "n", t0.Add(2 * time.Second)},
		row{app, kept, "c", "n", t0})
	insertError(t, db, app, &session)
	insertError(t, db, app, &kept)
	insertError(t, db, app, nil)
	by := query.Actor{KeyID: uuid.New(), AppID: uuid.New()}
	// Audit entries of a changed event and of a deleted one.
	if _, err := s.Patch(ctx, query.Scope{}, by, evs[0], "", map[string]json.RawMessage{"name": json.RawMessage(`"x"`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, query.Scope{}, by, evs[1], ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Patch(ctx, query.Scope{}, by, evs[3], "", map[string]json.RawMessage{"name": json.RawMessage(`"x"`)}); err != nil {
		t.Fatal(err)
	}

	pub := &publisher{fail: errors.New("kafka is down")}
	e, err := query.NewEraser(storeOn(t, db), pub, "eye.erasures.v1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Erase(ctx, by, session); !errors.Is(err, query.ErrNotPublished) {
		t.Fatalf("erasure without Kafka: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM events WHERE session_id = $1`, session); n != 2 {
		t.Fatalf("an unpublished erasure deleted events: %d left", n)
	}

	pub.fail = nil
	pub.check = func() { // the tombstone goes out before anything is deleted
		if n := count(t, db, `SELECT count(*) FROM events WHERE session_id = $1`, session); n != 2 {
			t.Errorf("published after deleting: %d events left", n)
		}
	}
	res, err := e.Erase(ctx, by, session)
	if err != nil {
		t.Fatal(err)
	}
	pub.check = nil
	if !res.Session || res.Events != 2 || res.Errors != 1 || res.AuditEntries != 2 || res.SessionID != session {
		t.Fatalf("erasure %+v", res)
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM events WHERE session_id = $1`:      0,
		`SELECT count(*) FROM errors WHERE session_id = $1`:      0,
		`SELECT count(*) FROM event_audit WHERE session_id = $1`: 0,
		`SELECT count(*) FROM sessions WHERE id = $1`:            0,
	} {
		if n := count(t, db, q, session); n != want {
			t.Fatalf("%s: %d", q, n)
		}
	}
	if n := count(t, db, `SELECT count(*) FROM events`); n != 1 {
		t.Fatalf("%d events left, want the other session's 1", n)
	}
	if n := count(t, db, `SELECT count(*) FROM errors`); n != 2 {
		t.Fatalf("%d error records left, want 2", n)
	}
	if n := count(t, db, `SELECT count(*) FROM event_audit`); n != 1 {
		t.Fatalf("%d audit entries left, want the other session's 1", n)
	}
	if _, _, err := s.Audit(ctx, evs[1], paging.Request{}); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("audit of an erased, deleted event: %v", err)
	}

	if len(pub.msgs) != 1 {
		t.Fatalf("%d messages published", len(pub.msgs))
	}
	m := pub.msgs[0]
	var ts contract.Tombstone
	if err := contract.Decode(m.Value, &ts); err != nil {
		t.Fatal(err)
	}
	if m.Topic != "eye.erasures.v1" || string(m.Key) != session.String() || m.Headers[contract.HeaderType] != contract.TypeTombstone ||
		ts.SessionID != session || ts.AppID != app || ts.ID != res.TombstoneID || ts.RequestedAt.IsZero() {
		t.Fatalf("tombstone %s %s %v %+v", m.Topic, m.Key, m.Headers, ts)
	}
	var rec struct {
		App    uuid.UUID `db:"app_id"`
		Key    uuid.UUID `db:"actor_key_id"`
		Events int64     `db:"events"`
	}
	if err := db.Get(&rec, `SELECT app_id, actor_key_id, events FROM session_erasures WHERE id = $1 AND session_id = $2`, res.TombstoneID, session); err != nil ||
		rec.App != app || rec.Key != by.KeyID || rec.Events != 2 {
		t.Fatalf("erasure record: %v %+v", err, rec)
	}

	// Erasing again, or a session nothing is known of, still announces it.
	again, err := e.Erase(ctx, by, session)
	if err != nil || again.Session || again.Events != 0 || len(pub.msgs) != 2 {
		t.Fatalf("second erasure: %v %+v, %d messages", err, again, len(pub.msgs))
	}
	if err := contract.Decode(pub.msgs[1].Value, &ts); err != nil || ts.AppID != uuid.Nil {
		t.Fatalf("tombstone of an unknown session: %v %+v", err, ts)
	}
}

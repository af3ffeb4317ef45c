package query

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// memStore is an in-memory Store: events by id, sessions by id, and what
// was asked of it. Methods a test does not use are the nil embedded
// interface's (calling one panics).
type memStore struct {
	Store
	events   map[uuid.UUID]Event
	sessions map[uuid.UUID]Session
	audits   []string // actions audited, in order
	calls    int      // Stats and Summary calls
	by       []string // Summary's dimensions
}

func newMem(events ...Event) *memStore {
	m := &memStore{events: map[uuid.UUID]Event{}, sessions: map[uuid.UUID]Session{}}
	for _, e := range events {
		m.events[e.ID] = e
	}
	return m
}

func (m *memStore) visible(sc Scope, id uuid.UUID) (Event, error) {
	e, ok := m.events[id]
	if !ok || (sc.AppID != uuid.Nil && e.ApplicationID != sc.AppID) {
		return Event{}, ErrNotFound
	}
	return e, nil
}

func (m *memStore) Event(_ context.Context, sc Scope, id uuid.UUID) (Event, error) {
	return m.visible(sc, id)
}

func (m *memStore) Events(_ context.Context, sc Scope, f EventFilter, _ paging.Request) ([]Event, paging.Links, error) {
	var out []Event
	for _, e := range m.events {
		if (sc.AppID == uuid.Nil || e.ApplicationID == sc.AppID) && (f.Session == nil || e.SessionID == *f.Session) {
			out = append(out, e)
		}
	}
	return out, paging.Links{}, nil
}

func (m *memStore) Session(_ context.Context, sc Scope, id uuid.UUID) (Session, error) {
	s, ok := m.sessions[id]
	if !ok || (sc.AppID != uuid.Nil && s.ApplicationID != sc.AppID) {
		return Session{}, ErrNotFound
	}
	return s, nil
}

func (m *memStore) Audit(context.Context, uuid.UUID, paging.Request) ([]AuditEntry, paging.Links, error) {
	return nil, paging.Links{}, nil
}

func (m *memStore) Stats(context.Context, Scope, StatsFilter) ([]Stat, error) {
	m.calls++
	return []Stat{}, nil
}

func (m *memStore) Summary(_ context.Context, _ Scope, _ ErrorFilter, by []string) (ErrorSummary, error) {
	m.calls++
	m.by = by
	return ErrorSummary{By: by}, nil
}

func (m *memStore) Edit(_ context.Context, sc Scope, _ Actor, action string, id uuid.UUID, decide func(Event) (Change, error)) (Event, error) {
	cur, err := m.visible(sc, id)
	if err != nil {
		return Event{}, err
	}
	c, err := decide(cur)
	if err != nil {
		return Event{}, err
	}
	cur.Category, cur.Name, cur.Data, cur.Timestamp = c.Category, c.Name, c.Data, apitime.New(c.Timestamp)
	cur.Version++
	m.events[id] = cur
	m.audits = append(m.audits, action)
	return cur, nil
}

func (m *memStore) Delete(_ context.Context, sc Scope, _ Actor, id uuid.UUID, check func(Event) error) error {
	cur, err := m.visible(sc, id)
	if err != nil {
		return err
	}
	if err := check(cur); err != nil {
		return err
	}
	delete(m.events, id)
	m.audits = append(m.audits, ActionDelete)
	return nil
}

func newTestService(t *testing.T, m *memStore) *Service {
	t.Helper()
	s, err := NewService(m, event.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func storedEvent(app uuid.UUID) Event {
	session := uuid.New()
	return Event{ID: uuid.New(), ApplicationID: app, SessionID: session, Session: SessionRef{ID: session},
		Category: "page interaction", Name: "pageview", Data: json.RawMessage(`{"path":"/"}`),
		Timestamp: apitime.New(time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)), Version: 1}
}

// TestEditPrecondition: an If-Match that is not the event's current ETag
// is ErrPrecondition and changes nothing; "" and "*" match any version, the
// current ETag matches, and a second edit with the first one's ETag fails.
func TestEditPrecondition(t *testing.T) {
	ctx := context.Background()
	app := uuid.New()
	ev := storedEvent(app)
	m := newMem(ev)
	s := newTestService(t, m)
	patch := map[string]json.RawMessage{"name": json.RawMessage(`"click"`)}

	stale := `"` + ev.ID.String() + `.0"`
	if _, err := s.Patch(ctx, Scope{AppID: app}, Actor{}, ev.ID, stale, patch); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("stale If-Match: %v", err)
	}
	if err := s.Delete(ctx, Scope{AppID: app}, Actor{}, ev.ID, stale); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("stale If-Match on delete: %v", err)
	}
	if got := m.events[ev.ID]; got.Name != "pageview" || got.Version != 1 || len(m.audits) != 0 {
		t.Fatalf("a failed precondition changed the event: %+v %v", got, m.audits)
	}
	first := ev.ETag()
	got, err := s.Patch(ctx, Scope{AppID: app}, Actor{}, ev.ID, first, patch)
	if err != nil || got.Name != "click" || got.Version != 2 || got.Category != ev.Category || string(got.Data) != string(ev.Data) {
		t.Fatalf("patch with the current ETag: %+v %v", got, err)
	}
	if _, err := s.Patch(ctx, Scope{AppID: app}, Actor{}, ev.ID, first, patch); !errors.Is(err, ErrPrecondition) {
		t.Fatalf("the first version's ETag after a change: %v", err)
	}
	for _, ifMatch := range []string{"", "*"} {
		if _, err := s.Patch(ctx, Scope{AppID: app}, Actor{}, ev.ID, ifMatch, patch); err != nil {
			t.Fatalf("If-Match %q: %v", ifMatch, err)
		}
	}
	if _, err := s.Patch(ctx, Scope{AppID: uuid.New()}, Actor{}, ev.ID, "", patch); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another application's event: %v", err)
	}
}

// TestEditRules: edits pass the ingestion rules, keep the event's session,
// and PUT replaces every editable field while PATCH keeps the others.
func TestEditRules(t *testing.T) {
	ctx := context.Background()
	ev := storedEvent(uuid.New())
	m := newMem(ev)
	s := newTestService(t, m)
	var reasons event.Reasons
	if _, err := s.Patch(ctx, Scope{}, Actor{}, ev.ID, "", map[string]json.RawMessage{"category": json.RawMessage(`""`)}); !errors.As(err, &reasons) {
		t.Fatalf("an empty category: %v", err)
	}
	other := json.RawMessage(`"` + uuid.NewString() + `"`)
	if _, err := s.Patch(ctx, Scope{}, Actor{}, ev.ID, "", map[string]json.RawMessage{"session_id": other}); !errors.Is(err, ErrSessionImmutable) {
		t.Fatalf("another session: %v", err)
	}
	if _, err := s.Replace(ctx, Scope{}, Actor{}, ev.ID, "", map[string]json.RawMessage{"category": json.RawMessage(`"c"`)}); !errors.As(err, &reasons) {
		t.Fatalf("PUT without the other fields: %v", err)
	}
	if len(m.audits) != 0 || m.events[ev.ID].Version != 1 {
		t.Fatalf("refused edits changed the event: %v", m.audits)
	}
	ts := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	got, err := s.Replace(ctx, Scope{}, Actor{}, ev.ID, "", map[string]json.RawMessage{
		"category": json.RawMessage(`"c"`), "name": json.RawMessage(`"n"`), "data": json.RawMessage(`{"a":1}`),
		"timestamp": json.RawMessage(`"` + ts.Format(time.RFC3339Nano) + `"`), "id": json.RawMessage(`"ignored"`)})
	if err != nil || got.Category != "c" || got.Name != "n" || string(got.Data) != `{"a":1}` || !got.Timestamp.Equal(ts) || got.SessionID != ev.SessionID {
		t.Fatalf("PUT: %+v %v", got, err)
	}
	if len(m.audits) != 1 || m.audits[0] != ActionReplace {
		t.Fatalf("audited %v", m.audits)
	}
}

// TestStatsAndSummaryRules: a bad range, too many buckets and unknown or
// repeated summary dimensions are refused before storage is asked.
func TestStatsAndSummaryRules(t *testing.T) {
	ctx := context.Background()
	m := newMem()
	s := newTestService(t, m)
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		f    StatsFilter
		want error
	}{
		{StatsFilter{Bucket: "week", From: day, To: day.Add(time.Hour)}, ErrBadRange},
		{StatsFilter{Bucket: Hour, From: day, To: day.Add(-time.Hour)}, ErrBadRange},
		{StatsFilter{Bucket: Minute, From: day, To: day.Add(MaxBuckets * time.Minute)}, ErrTooManyBuckets},
	} {
		if _, err := s.Stats(ctx, Scope{}, c.f); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.f, err, c.want)
		}
	}
	if _, err := s.Stats(ctx, Scope{}, StatsFilter{Bucket: Minute, From: day, To: day.Add((MaxBuckets - 1) * time.Minute)}); err != nil {
		t.Fatalf("MaxBuckets buckets: %v", err)
	}
	for _, by := range [][]string{{"reason", "reason"}, {"colour"}} {
		if _, err := s.Summary(ctx, Scope{}, ErrorFilter{}, by); !errors.Is(err, ErrBadGrouping) {
			t.Errorf("by %v: %v", by, err)
		}
	}
	if m.calls != 1 {
		t.Fatalf("storage asked %d times, want once (the valid stats)", m.calls)
	}
	if _, err := s.Summary(ctx, Scope{}, ErrorFilter{}, nil); err != nil || len(m.by) != 1 || m.by[0] != ByReason {
		t.Fatalf("default grouping: %v %v", m.by, err)
	}
}

// TestTimelineAndAuditOfUnknown: a session without events is an empty
// timeline when it exists and ErrNotFound when it does not (or is another
// application's); the audit of an event that does not exist is ErrNotFound.
func TestTimelineAndAuditOfUnknown(t *testing.T) {
	ctx := context.Background()
	app := uuid.New()
	m := newMem()
	empty := uuid.New()
	m.sessions[empty] = Session{ID: empty, ApplicationID: app}
	s := newTestService(t, m)
	if list, _, err := s.Timeline(ctx, Scope{AppID: app}, empty, paging.Request{}); err != nil || len(list) != 0 {
		t.Fatalf("empty session: %v %v", list, err)
	}
	for _, c := range []struct {
		sc Scope
		id uuid.UUID
	}{{Scope{AppID: app}, uuid.New()}, {Scope{AppID: uuid.New()}, empty}} {
		if _, _, err := s.Timeline(ctx, c.sc, c.id, paging.Request{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("timeline of an unknown session: %v", err)
		}
	}
	if _, _, err := s.Audit(ctx, uuid.New(), paging.Request{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("audit of an unknown event: %v", err)
	}
}

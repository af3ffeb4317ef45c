package persist

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

// memStore is an in-memory Store: the domain is tested without Postgres.
type memStore struct {
	erased   map[uuid.UUID]time.Time
	sessions map[uuid.UUID]Session
	strict   map[uuid.UUID]bool
	refuse   map[uuid.UUID]error // events InsertEvents rejects
	down     error               // every call fails with it when set

	stored  []event.Event
	lineage []Lineage
	errors  []contract.Error
}

func (m *memStore) Erased(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]time.Time, error) {
	out := map[uuid.UUID]time.Time{}
	for _, id := range ids {
		if at, ok := m.erased[id]; ok {
			out[id] = at
		}
	}
	return out, m.down
}

func (m *memStore) Sessions(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]Session, error) {
	out := map[uuid.UUID]Session{}
	for _, id := range ids {
		if s, ok := m.sessions[id]; ok {
			out[id] = s
		}
	}
	return out, m.down
}

func (m *memStore) StrictSessions(_ context.Context, apps []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	for _, id := range apps {
		if m.strict[id] {
			out[id] = true
		}
	}
	return out, m.down
}

func (m *memStore) InsertEvents(_ context.Context, events []event.Event) ([]Rejected, error) {
	if m.down != nil {
		return nil, m.down
	}
	var rej []Rejected
	for _, e := range events {
		if err := m.refuse[e.ID]; err != nil {
			rej = append(rej, Rejected{Event: e, Err: err})
			continue
		}
		m.stored = append(m.stored, e)
	}
	return rej, nil
}

func (m *memStore) MarkReplayed(_ context.Context, ls []Lineage) error {
	m.lineage = append(m.lineage, ls...)
	return m.down
}

func (m *memStore) InsertErrors(_ context.Context, recs []contract.Error) error {
	m.errors = append(m.errors, recs...)
	return m.down
}

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func ev(app, session uuid.UUID, received time.Time) contract.Event {
	return contract.Event{ID: uuid.Must(uuid.NewV7()), AppID: app, SessionID: session, Category: "c", Name: "n",
		Data: json.RawMessage(`{"a":1}`), Timestamp: received, ReceivedAt: received}
}

func newWriter(t *testing.T, st *memStore) *Writer {
	t.Helper()
	w, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return t0 }
	return w
}

func ids(events []event.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// TestEventsSessionVerdicts: an event of another application's session is
// a session_conflict, one of a session a strict application never
// registered an unknown_session; both become error records of the writer
// about the event, and every other event is stored.
func TestEventsSessionVerdicts(t *testing.T) {
	strictApp, laxApp := uuid.New(), uuid.New()
	registered, unregistered, foreign := uuid.New(), uuid.New(), uuid.New()
	st := &memStore{
		sessions: map[uuid.UUID]Session{
			registered:   {AppID: strictApp, Registered: true},
			unregistered: {AppID: strictApp},
			foreign:      {AppID: laxApp, Registered: true},
		},
		strict: map[uuid.UUID]bool{strictApp: true},
	}
	batch := []contract.Event{
		ev(strictApp, registered, t0),   // stored
		ev(strictApp, unregistered, t0), // unknown_session
		ev(strictApp, uuid.New(), t0),   // unknown_session
		ev(laxApp, uuid.New(), t0),      // stored
		ev(strictApp, foreign, t0),      // session_conflict
		ev(laxApp, registered, t0),      // session_conflict
	}
	want := []event.Code{"", event.CodeUnknownSession, event.CodeUnknownSession, "", event.CodeSessionOwner, event.CodeSessionOwner}
	bad, err := newWriter(t, st).Events(context.Background(), slices.Clone(batch))
	if err != nil {
		t.Fatal(err)
	}
	got := map[uuid.UUID]event.Code{}
	for _, e := range bad {
		if e.Stage != contract.StageWriter || e.SessionID == nil || len(e.Reasons) != 1 || !e.DetectedAt.Equal(t0) {
			t.Fatalf("error record %+v", e)
		}
		var doc contract.Event
		if p, _ := e.Payload.Bytes(); json.Unmarshal(p, &doc) != nil || doc.ID != e.ID || *e.SessionID != doc.SessionID {
			t.Fatalf("error record %s does not carry its event: %s", e.ID, e.Payload.Data)
		}
		got[e.ID] = e.Reasons[0].Code
	}
	var stored []uuid.UUID
	for i, e := range batch {
		if got[e.ID] != want[i] {
			t.Errorf("event %d: %q, want %q", i, got[e.ID], want[i])
		}
		if want[i] == "" {
			stored = append(stored, e.ID)
		}
	}
	if !slices.Equal(ids(st.stored), stored) {
		t.Fatalf("stored %v, want %v", ids(st.stored), stored)
	}
}

// TestEventsOfErasedSessions: events received before their session was
// erased are left out (they would bring it back), later ones are stored.
func TestEventsOfErasedSessions(t *testing.T) {
	app, session := uuid.New(), uuid.New()
	st := &memStore{erased: map[uuid.UUID]time.Time{session: t0}}
	before, after := ev(app, session, t0.Add(-time.Second)), ev(app, session, t0.Add(time.Second))
	bad, err := newWriter(t, st).Events(context.Background(), []contract.Event{before, after})
	if err != nil || len(bad) != 0 {
		t.Fatalf("%v %v", bad, err)
	}
	if !slices.Equal(ids(st.stored), []uuid.UUID{after.ID}) {
		t.Fatalf("stored %v, want only the event received after the erasure", ids(st.stored))
	}
}

// TestRefusedReplayKeepsLineage: an event storage refuses becomes a
// storage_rejected record; when it comes from a replay its record gets an
// id of its own (never the replayed record's) and keeps the lineage, and
// the replayed events that were stored are marked with their origin.
func TestRefusedReplayKeepsLineage(t *testing.T) {
	app, session := uuid.New(), uuid.New()
	refused, stored := ev(app, session, t0), ev(app, session, t0)
	refused.ReplayOf = &contract.Replay{ErrorID: uuid.New(), Attempt: 2}
	stored.ReplayOf = &contract.Replay{ErrorID: uuid.New(), Attempt: 1}
	st := &memStore{refuse: map[uuid.UUID]error{refused.ID: errors.New("invalid input syntax")}}
	bad, err := newWriter(t, st).Events(context.Background(), []contract.Event{refused, stored})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || bad[0].Reasons[0].Code != event.CodeStorageRejected || bad[0].ID != contract.ErrorID(refused.ID, refused.ReplayOf) ||
		bad[0].ID == refused.ReplayOf.ErrorID || bad[0].ReplayOf == nil || *bad[0].ReplayOf != *refused.ReplayOf {
		t.Fatalf("error records %+v", bad)
	}
	// Lineage is asked for every replayed event sent to storage: marking
	// one that was refused changes nothing.
	if len(st.lineage) != 2 || st.lineage[1] != (Lineage{EventID: stored.ID, ErrorID: stored.ReplayOf.ErrorID, ReceivedAt: t0}) {
		t.Fatalf("lineage %+v", st.lineage)
	}
}

// TestStorageDownFailsTheBatch: nothing is turned into an error record
// when storage cannot answer; the batch is retried whole.
func TestStorageDownFailsTheBatch(t *testing.T) {
	down := errors.New("postgres down")
	st := &memStore{down: down}
	w := newWriter(t, st)
	if bad, err := w.Events(context.Background(), []contract.Event{ev(uuid.New(), uuid.New(), t0)}); !errors.Is(err, down) || bad != nil {
		t.Fatalf("events: %v %v", bad, err)
	}
	if err := w.Errors(context.Background(), []contract.Error{{ID: uuid.New()}}); !errors.Is(err, down) {
		t.Fatalf("errors: %v", err)
	}
}

// TestErrorsOfErasedSessions: error records of a session received before
// its erasure are left out; records without a session are always stored.
func TestErrorsOfErasedSessions(t *testing.T) {
	session := uuid.New()
	st := &memStore{erased: map[uuid.UUID]time.Time{session: t0}}
	recs := []contract.Error{
		{ID: uuid.New(), SessionID: &session, ReceivedAt: t0.Add(-time.Second)},
		{ID: uuid.New(), SessionID: &session, ReceivedAt: t0.Add(time.Second)},
		{ID: uuid.New(), ReceivedAt: t0.Add(-time.Second)},
	}
	want := []uuid.UUID{recs[1].ID, recs[2].ID}
	if err := newWriter(t, st).Errors(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	for _, r := range st.errors {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
}

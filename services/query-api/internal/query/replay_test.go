package query

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
)

// memReplays is in-memory replay storage: error records by id, strict
// applications, published schemas, and what was recorded.
type memReplays struct {
	errors   map[uuid.UUID]Error
	strict   map[uuid.UUID]bool
	schemas  []SchemaSource
	attempts map[uuid.UUID]int
	replayed map[uuid.UUID]uuid.UUID // error id → event id
}

func (m *memReplays) Error(_ context.Context, sc Scope, id uuid.UUID) (Error, error) {
	e, ok := m.errors[id]
	if !ok || (sc.AppID != uuid.Nil && e.ApplicationID != sc.AppID) {
		return Error{}, ErrNotFound
	}
	return e, nil
}

func (m *memReplays) OldestErrors(context.Context, Scope, ErrorFilter, *Error, int) ([]Error, error) {
	return nil, errors.New("not used")
}

func (m *memReplays) ReplayRoots(context.Context, []uuid.UUID, int) (map[uuid.UUID]ReplayRoot, error) {
	return map[uuid.UUID]ReplayRoot{}, nil
}

func (m *memReplays) NextAttempts(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]int, error) {
	out := map[uuid.UUID]int{}
	for _, id := range ids {
		m.attempts[id]++
		out[id] = m.attempts[id]
	}
	return out, nil
}

func (m *memReplays) MarkReplayed(_ context.Context, ids, events []uuid.UUID) error {
	for i, id := range ids {
		m.replayed[id] = events[i]
	}
	return nil
}

func (m *memReplays) StrictTypes(_ context.Context, app uuid.UUID) (bool, error) {
	return m.strict[app], nil
}

func (m *memReplays) PublishedSchemas(context.Context) ([]SchemaSource, error) { return m.schemas, nil }

const replaySession = "9AB1B579-7021-4E0C-8EA1-2AC9F52F3058"

func replayDoc(typ, data string) string {
	return `{"session_id": "` + replaySession + `", "category": "page interaction", "name": "` + typ + `", "data": ` + data +
		`, "timestamp": "2021-06-15 00:00:00"}`
}

// TestReplayOneRules: a payload that still fails the rules publishes and
// records nothing (ErrReplayInvalid) while a dry run only reports it; one
// that passes is published under the record's id, keyed by its canonical
// session, as attempt 1, and recorded only once Kafka acknowledged it; an
// untyped event of an application with strict types, a type's published
// schema and a record of no application all fail as the validator would.
func TestReplayOneRules(t *testing.T) {
	ctx := context.Background()
	app, strictApp := uuid.New(), uuid.New()
	received := time.Date(2021, 6, 15, 0, 0, 1, 0, time.UTC)
	record := func(app uuid.UUID, doc string) Error {
		e := Error{ID: uuid.New(), ApplicationID: app, Payload: contract.NewPayload([]byte(doc)), ReceivedAt: apitime.New(received),
			Reasons: event.Reasons{{Code: event.CodeEmptyData}}}
		return e
	}
	broken := record(app, replayDoc("pageview", `{}`))
	strictRec := record(strictApp, replayDoc("pageview", `{"a": 1}`))
	typed := record(app, replayDoc("signup", `{"a": 1}`))
	orphan := record(uuid.Nil, `garbage`)
	m := &memReplays{errors: map[uuid.UUID]Error{}, strict: map[uuid.UUID]bool{strictApp: true},
		schemas:  []SchemaSource{{Category: "page interaction", Name: "signup", Version: 1, Schema: []byte(`{"type": "object", "required": ["email"]}`)}},
		attempts: map[uuid.UUID]int{}, replayed: map[uuid.UUID]uuid.UUID{}}
	for _, e := range []Error{broken, strictRec, typed, orphan} {
		m.errors[e.ID] = e
	}
	pub := &stepPublisher{steps: &steps{}}
	r, err := NewReplayer(m, event.DefaultRules(), pub, "eye.events.raw.v1", time.Second)
	if err != nil {
		t.Fatal(err)
	}

	var reasons event.Reasons
	if _, err := r.ReplayOne(ctx, Scope{}, broken.ID, nil, false); !errors.Is(err, ErrReplayInvalid) || !errors.As(err, &reasons) || reasons[0].Code != event.CodeEmptyData {
		t.Fatalf("still invalid: %v", err)
	}
	if len(pub.msgs) != 0 || len(m.attempts) != 0 || len(m.replayed) != 0 {
		t.Fatalf("a still-invalid replay published %d, counted %v, recorded %v", len(pub.msgs), m.attempts, m.replayed)
	}
	rep, err := r.ReplayOne(ctx, Scope{}, broken.ID, nil, true)
	if err != nil || rep.Failing != 1 || rep.Published != 0 || rep.Results[0].Passes || len(pub.msgs) != 0 {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	for _, c := range []struct {
		rec  Error
		code event.Code
	}{{strictRec, event.CodeUnknownEventType}, {typed, event.CodeSchemaViolation}, {orphan, event.CodeUnknownApplication}} {
		rep, err := r.ReplayOne(ctx, Scope{}, c.rec.ID, nil, true)
		if err != nil || rep.Passing != 0 || len(rep.Failures) == 0 || rep.Failures[0].Code != c.code {
			t.Fatalf("%s: %+v %v, want %s", c.rec.ID, rep, err, c.code)
		}
	}
	if _, err := r.ReplayOne(ctx, Scope{AppID: uuid.New()}, broken.ID, nil, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another application's record: %v", err)
	}

	fixed := json.RawMessage(replayDoc("pageview", `{"a": 1}`))
	pub.fail = errors.New("broker down")
	if _, err := r.ReplayOne(ctx, Scope{}, broken.ID, fixed, false); !errors.Is(err, ErrReplayNotPublished) || len(m.replayed) != 0 {
		t.Fatalf("unacknowledged replay: %v, recorded %v", err, m.replayed)
	}
	pub.fail = nil
	rep, err = r.ReplayOne(ctx, Scope{}, broken.ID, fixed, false)
	if err != nil || rep.Published != 1 || !rep.Results[0].Published || rep.Results[0].Attempt != 2 || m.replayed[broken.ID] != broken.ID {
		t.Fatalf("replay: %+v %v, recorded %v", rep, err, m.replayed)
	}
	var raw contract.RawEvent
	if err := contract.Decode(pub.msgs[0].Value, &raw); err != nil {
		t.Fatal(err)
	}
	body, _ := raw.Payload.Bytes()
	if string(pub.msgs[0].Key) != uuid.MustParse(replaySession).String() || raw.EventID != broken.ID || raw.AppID != app ||
		!raw.ReceivedAt.Equal(received) || string(body) != string(fixed) || raw.ReplayOf == nil || raw.ReplayOf.Attempt != 2 {
		t.Fatalf("published %s %+v", pub.msgs[0].Key, raw)
	}
}

package ingest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

var topics = contract.NewTopics("eye.")

// recorder is a Publisher that keeps what it was given, or fails.
type recorder struct {
	msgs []contract.Message
	err  error
}

func (r *recorder) Publish(_ context.Context, msgs ...contract.Message) error {
	if r.err != nil {
		return r.err
	}
	r.msgs = append(r.msgs, msgs...)
	return nil
}

// memSessions is an in-memory session store.
type memSessions struct{ owner map[uuid.UUID]uuid.UUID }

func (m *memSessions) Register(_ context.Context, app, id uuid.UUID, _ time.Time) error {
	if m.owner == nil {
		m.owner = map[uuid.UUID]uuid.UUID{}
	}
	if o, ok := m.owner[id]; ok && o != app {
		return ErrSessionConflict
	}
	m.owner[id] = app
	return nil
}

func admitAll(int) error { return nil }

func newService(t *testing.T, pub Publisher) *Service {
	t.Helper()
	s, err := NewService(pub, &memSessions{}, topics, Limits{MaxEvents: 3, MaxStreamEvents: 1000, MaxEventBytes: 200, MaxDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const sid = "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"

func TestIngest(t *testing.T) {
	app := uuid.New()
	tests := []struct {
		name      string
		body      string
		wantErr   error
		wantCode  event.Code // for a RejectedError
		receipts  []string
		published []string // topics, in order
	}{
		{name: "one event", body: `{"session":{"id":"` + sid + `"},"x":1}`, receipts: []string{"accepted"}, published: []string{topics.Raw}},
		{name: "batch with what the gateway can tell", body: `[{"session_id":"` + sid + `"}, "x", {}, {"session_id":"` + sid + `","id":"nope"}]`,
			wantErr: ErrTooManyEvents},
		{name: "batch rejections", body: `[{"session_id":"` + sid + `"}, "x", {"a":1}]`, receipts: []string{"accepted", "rejected", "rejected"},
			published: []string{topics.Raw, topics.Errors, topics.Errors}},
		{name: "batch bad id and depth", body: `[{"session_id":"` + sid + `","id":"nope"},{"session_id":"` + sid + `","d":[[[[1]]]]}]`, receipts: []string{"rejected", "rejected"},
			published: []string{topics.Errors, topics.Errors}},
		{name: "client id kept", body: `{"session_id":"` + sid + `","id":"0190a0b0-0000-7000-8000-000000000001"}`, receipts: []string{"accepted"}, published: []string{topics.Raw}},
		{name: "single without session", body: `{"category":"c"}`, wantCode: event.CodeMissingField, published: []string{topics.Errors}},
		{name: "single too large", body: `{"session_id":"` + sid + `","x":"` + strings.Repeat("a", 200) + `"}`, wantCode: event.CodeTooLarge, published: []string{topics.Errors}},
		{name: "not json", body: `{"a":`, wantCode: event.CodeInvalidJSON, published: []string{topics.Errors}},
		{name: "empty body", body: ``, wantCode: event.CodeInvalidJSON, published: []string{topics.Errors}},
		{name: "unterminated array", body: `[{"session_id":"` + sid + `"},`, wantCode: event.CodeInvalidJSON, published: []string{topics.Errors}},
		{name: "array with trailing garbage", body: `[{"session_id":"` + sid + `"}] x`, wantCode: event.CodeInvalidJSON, published: []string{topics.Errors}},
		{name: "scalar", body: `42`, wantCode: event.CodeNotObject, published: []string{topics.Errors}},
		{name: "empty batch", body: `[]`, wantErr: ErrEmptyBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			res, err := newService(t, rec).Ingest(context.Background(), app, []byte(tt.body), admitAll)
			var rej *RejectedError
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.wantCode != "":
				if !errors.As(err, &rej) || rej.Reason.Code != tt.wantCode {
					t.Fatalf("err = %v, want rejection %s", err, tt.wantCode)
				}
			case err != nil:
				t.Fatal(err)
			}
			if len(res.Receipts) != len(tt.receipts) {
				t.Fatalf("receipts %+v", res.Receipts)
			}
			for i, r := range res.Receipts {
				if r.Status != tt.receipts[i] {
					t.Fatalf("receipt %d: %s, want %s", i, r.Status, tt.receipts[i])
				}
			}
			if len(rec.msgs) != len(tt.published) {
				t.Fatalf("published %d messages, want %d", len(rec.msgs), len(tt.published))
			}
			for i, m := range rec.msgs {
				if m.Topic != tt.published[i] {
					t.Fatalf("message %d on %s, want %s", i, m.Topic, tt.published[i])
				}
			}
			if rej != nil {
				var e contract.Error
				if err := contract.Decode(rec.msgs[0].Value, &e); err != nil || e.ID != rej.ID || !strings.HasPrefix(tt.body, e.Payload.Data) || len(e.Payload.Data) > 200 || e.AppID != app {
					t.Fatalf("error record %s", rec.msgs[0].Value)
				}
			}
		})
	}
}

func TestIngestKeysBySessionAndStampsEvents(t *testing.T) {
	rec := &recorder{}
	app := uuid.New()
	res, err := newService(t, rec).Ingest(context.Background(), app, []byte(`[{"session_id":"9AB1B579-7021-4E0C-8EA1-2AC9F52F3058"},{"session":{"id":"`+sid+`"}},{"session_id":"nope"}]`), admitAll)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{sid, sid, "nope"} {
		if string(rec.msgs[i].Key) != want {
			t.Fatalf("key %d = %s, want %s", i, rec.msgs[i].Key, want)
		}
		var r contract.RawEvent
		if err := contract.Decode(rec.msgs[i].Value, &r); err != nil || r.EventID != res.Receipts[i].ID || r.AppID != app || r.ReceivedAt.IsZero() {
			t.Fatalf("raw event %s", rec.msgs[i].Value)
		}
	}
}

func TestIngestNeverAcceptsWhatWasNotPublished(t *testing.T) {
	rec := &recorder{err: errors.New("broker down")}
	s := newService(t, rec)
	if _, err := s.Ingest(context.Background(), uuid.New(), []byte(`{"session_id":"`+sid+`"}`), admitAll); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if _, err := s.Ingest(context.Background(), uuid.New(), []byte(`nope`), admitAll); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("invalid body with the broker down: err = %v, want ErrUnavailable", err)
	}
}

// failingSessions is a session store that is down.
type failingSessions struct{}

func (failingSessions) Register(context.Context, uuid.UUID, uuid.UUID, time.Time) error {
	return errors.New("connection refused")
}

// TestRegisterSession: an id is generated when none is given, registering
// again is idempotent, another application's session is ErrSessionConflict
// and a store that is down is ErrUnavailable (a 503, not a 409).
func TestRegisterSession(t *testing.T) {
	ctx := context.Background()
	s := newService(t, &recorder{})
	app := uuid.New()
	id, err := s.RegisterSession(ctx, app, uuid.Nil)
	if err != nil || id == uuid.Nil || id.Version() != 7 {
		t.Fatalf("generated id %v: %v", id, err)
	}
	if again, err := s.RegisterSession(ctx, app, id); err != nil || again != id {
		t.Fatalf("registering again: %v %v", again, err)
	}
	if _, err := s.RegisterSession(ctx, uuid.New(), id); !errors.Is(err, ErrSessionConflict) {
		t.Fatalf("another application's session: %v", err)
	}
	down, err := NewService(&recorder{}, failingSessions{}, topics, Limits{MaxEvents: 3, MaxStreamEvents: 1000, MaxEventBytes: 200, MaxDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.RegisterSession(ctx, app, uuid.New()); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrSessionConflict) {
		t.Fatalf("store down: %v", err)
	}
}

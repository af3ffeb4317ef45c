package ingest

import (
	"context"
	"errors"
	"testing"

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

func newService(t *testing.T, pub Publisher) *Service {
	t.Helper()
	s, err := NewService(pub, topics, Limits{MaxEvents: 3})
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
		{name: "batch with a non-object", body: `[{"session_id":"` + sid + `"}, "x", {}]`, receipts: []string{"accepted", "rejected", "accepted"},
			published: []string{topics.Raw, topics.Errors, topics.Raw}},
		{name: "not json", body: `{"a":`, wantCode: event.CodeInvalidJSON, published: []string{topics.Errors}},
		{name: "empty body", body: ``, wantCode: event.CodeInvalidJSON, published: []string{topics.Errors}},
		{name: "scalar", body: `42`, wantCode: event.CodeNotObject, published: []string{topics.Errors}},
		{name: "empty batch", body: `[]`, wantErr: ErrEmptyBatch},
		{name: "too many", body: `[{},{},{},{}]`, wantErr: ErrTooManyEvents},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			res, err := newService(t, rec).Ingest(context.Background(), app, []byte(tt.body))
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
				if err := contract.Decode(rec.msgs[0].Value, &e); err != nil || e.ID != rej.ID || e.Payload.Data != tt.body || e.AppID != app {
					t.Fatalf("error record %s", rec.msgs[0].Value)
				}
			}
		})
	}
}

func TestIngestKeysBySessionAndStampsEvents(t *testing.T) {
	rec := &recorder{}
	app := uuid.New()
	res, err := newService(t, rec).Ingest(context.Background(), app, []byte(`[{"session_id":"9AB1B579-7021-4E0C-8EA1-2AC9F52F3058"},{"session":{"id":"`+sid+`"}},{"session_id":"nope"}]`))
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
	if _, err := s.Ingest(context.Background(), uuid.New(), []byte(`{"session_id":"`+sid+`"}`)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if _, err := s.Ingest(context.Background(), uuid.New(), []byte(`nope`)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("invalid body with the broker down: err = %v, want ErrUnavailable", err)
	}
	if _, err := s.RegisterSession(context.Background(), uuid.New(), uuid.Nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("session with the broker down: err = %v, want ErrUnavailable", err)
	}
}

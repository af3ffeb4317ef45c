package kafkaapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/schema"
	"github.com/the-eye/eye/services/validator/internal/validate"
)

var topics = contract.NewTopics("eye.")

// recorder is a Publisher that keeps what it was given.
type recorder struct{ msgs []contract.Message }

func (r *recorder) Publish(_ context.Context, msgs ...contract.Message) error {
	r.msgs = append(r.msgs, msgs...)
	return nil
}

func raw(t *testing.T, key, payload string) contract.Message {
	t.Helper()
	m, err := contract.Encode(topics.Raw, key, &contract.RawEvent{
		EventID: uuid.Must(uuid.NewV7()), AppID: uuid.New(), ReceivedAt: time.Now().UTC(), Payload: contract.NewPayload([]byte(payload)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHandleRoutesEachMessageInOrder(t *testing.T) {
	const sid = "9AB1B579-7021-4E0C-8EA1-2AC9F52F3058" // upper case: keys are canonicalised
	rec := &recorder{}
	h, err := New(validate.New(event.DefaultRules()), topics, rec)
	if err != nil {
		t.Fatal(err)
	}
	in := []contract.Message{
		raw(t, sid, `{"session_id":"`+sid+`","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`),
		raw(t, sid, `{"session_id":"`+sid+`","category":"c","name":"n","data":{},"timestamp":"2021-01-01 00:00:00"}`),
		{Topic: topics.Raw, Key: []byte("k"), Value: []byte("garbage")},
	}
	if err := h.Handle(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(rec.msgs) != 4 {
		t.Fatalf("published %d messages, want 3 outcomes and 1 dead letter", len(rec.msgs))
	}
	dl := rec.msgs[3]
	if dl.Topic != topics.DeadLetter || string(dl.Value) != "garbage" || string(dl.Key) != "k" ||
		dl.Headers[contract.HeaderDLQStage] != contract.StageValidator || dl.Headers[contract.HeaderDLQReason] == "" {
		t.Fatalf("dead letter %+v", dl)
	}
	if _, leaked := rec.msgs[2].Headers[contract.HeaderDLQReason]; leaked {
		t.Fatal("the error record carries the internal dead-letter header")
	}
	var ev contract.Event
	if rec.msgs[0].Topic != topics.Events || contract.Decode(rec.msgs[0].Value, &ev) != nil ||
		string(rec.msgs[0].Key) != "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058" || ev.SessionID.String() != string(rec.msgs[0].Key) {
		t.Fatalf("valid event: %s %s %s", rec.msgs[0].Topic, rec.msgs[0].Key, rec.msgs[0].Value)
	}
	var er contract.Error
	if rec.msgs[1].Topic != topics.Errors || contract.Decode(rec.msgs[1].Value, &er) != nil ||
		er.Reasons[0].Code != event.CodeEmptyData || er.SessionID == nil || er.Stage != contract.StageValidator {
		t.Fatalf("error record: %s", rec.msgs[1].Value)
	}
	var bad contract.Error
	if contract.Decode(rec.msgs[2].Value, &bad) != nil || bad.Reasons[0].Code != event.CodeInvalidEnvelope || bad.Payload.Data != "garbage" {
		t.Fatalf("undecodable: %s", rec.msgs[2].Value)
	}
	// The error id for an undecodable message is stable across redeliveries.
	rec.msgs = nil
	if err := h.Handle(context.Background(), in[2:]); err != nil {
		t.Fatal(err)
	}
	var bad2 contract.Error
	if len(rec.msgs) != 2 || contract.Decode(rec.msgs[0].Value, &bad2) != nil || bad2.ID != bad.ID {
		t.Fatal("undecodable message got a new id on redelivery")
	}
}

// TestJudgingFailureFailsTheBatch: when the domain cannot judge an event
// (an application's settings cannot be read), nothing of the batch is
// published, so the whole batch is retried.
func TestJudgingFailureFailsTheBatch(t *testing.T) {
	rec := &recorder{}
	down := errors.New("postgres down")
	strict := func(context.Context, uuid.UUID) (bool, error) { return false, down }
	h, err := New(validate.New(event.DefaultRules(), validate.WithSchemas(schema.NewRegistry(), strict)), topics, rec)
	if err != nil {
		t.Fatal(err)
	}
	const sid = "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"
	in := []contract.Message{
		{Topic: topics.Raw, Key: []byte("k"), Value: []byte("garbage")},
		raw(t, sid, `{"session_id":"`+sid+`","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`),
	}
	if err := h.Handle(context.Background(), in); !errors.Is(err, down) || len(rec.msgs) != 0 {
		t.Fatalf("err %v, published %d", err, len(rec.msgs))
	}
}

package validate

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

// TestReplayKeepsLineageAndItsOwnErrorID: a replayed raw event carries its
// replay to the valid event, and when it fails again its error record gets
// an id of its own, derived from the event id and the attempt, never the
// id of the record it replays.
func TestReplayKeepsLineageAndItsOwnErrorID(t *testing.T) {
	r, err := NewRelay(event.DefaultRules(), topics, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	const sid = "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"
	eventID := uuid.Must(uuid.NewV7())
	replayed := func(attempt int, payload string) contract.Message {
		t.Helper()
		m, err := contract.Encode(topics.Raw, sid, &contract.RawEvent{
			EventID: eventID, AppID: uuid.New(), ReceivedAt: time.Now().UTC(), Payload: contract.NewPayload([]byte(payload)),
			ReplayOf: &contract.Replay{ErrorID: eventID, Attempt: attempt},
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	const bad = `{"session_id":"` + sid + `","category":"c","name":"n","data":{},"timestamp":"2021-01-01 00:00:00"}`
	ids := map[uuid.UUID]bool{}
	for _, attempt := range []int{1, 1, 2} {
		out, err := r.Process(replayed(attempt, bad))
		if err != nil {
			t.Fatal(err)
		}
		var rec contract.Error
		if out.Topic != topics.Errors || contract.Decode(out.Value, &rec) != nil {
			t.Fatalf("attempt %d: %s %s", attempt, out.Topic, out.Value)
		}
		if rec.ID == eventID || rec.ID != contract.ErrorID(eventID, rec.ReplayOf) ||
			rec.ReplayOf == nil || rec.ReplayOf.ErrorID != eventID || rec.ReplayOf.Attempt != attempt {
			t.Fatalf("attempt %d: error record %s", attempt, out.Value)
		}
		ids[rec.ID] = true
	}
	if len(ids) != 2 {
		t.Fatalf("a redelivered attempt must keep its id and another attempt get a new one: %v", ids)
	}

	out, err := r.Process(replayed(3, `{"session_id":"`+sid+`","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	var ev contract.Event
	if out.Topic != topics.Events || contract.Decode(out.Value, &ev) != nil || ev.ID != eventID ||
		ev.ReplayOf == nil || ev.ReplayOf.ErrorID != eventID || ev.ReplayOf.Attempt != 3 {
		t.Fatalf("replayed event: %s %s", out.Topic, out.Value)
	}
}

package validate

import (
	"testing"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

// TestReplayKeepsLineageAndItsOwnErrorID: a replayed raw event carries its
// replay to the valid event, and when it fails again its error record gets
// an id of its own, derived from the event id and the attempt, never the
// id of the record it replays.
func TestReplayKeepsLineageAndItsOwnErrorID(t *testing.T) {
	v := New(event.DefaultRules())
	eventID := uuid.Must(uuid.NewV7())
	replayed := func(attempt int, payload string) contract.RawEvent {
		raw := rawEvent(uuid.New(), payload, &contract.Replay{ErrorID: eventID, Attempt: attempt})
		raw.EventID = eventID
		return raw
	}
	const bad = `{"session_id":"` + sid + `","category":"c","name":"n","data":{},"timestamp":"2021-01-01 00:00:00"}`
	ids := map[uuid.UUID]bool{}
	for _, attempt := range []int{1, 1, 2} {
		out, err := validate(t, v, replayed(attempt, bad))
		if err != nil {
			t.Fatal(err)
		}
		rec := out.Error
		if rec == nil {
			t.Fatalf("attempt %d: %+v", attempt, out)
		}
		if rec.ID == eventID || rec.ID != contract.ErrorID(eventID, rec.ReplayOf) ||
			rec.ReplayOf == nil || rec.ReplayOf.ErrorID != eventID || rec.ReplayOf.Attempt != attempt {
			t.Fatalf("attempt %d: error record %+v", attempt, rec)
		}
		ids[rec.ID] = true
	}
	if len(ids) != 2 {
		t.Fatalf("a redelivered attempt must keep its id and another attempt get a new one: %v", ids)
	}

	out, err := validate(t, v, replayed(3, `{"session_id":"`+sid+`","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev := out.Event; ev == nil || ev.ID != eventID || ev.ReplayOf == nil || ev.ReplayOf.ErrorID != eventID || ev.ReplayOf.Attempt != 3 {
		t.Fatalf("replayed event: %+v", out)
	}
}

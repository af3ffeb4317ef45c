package contract

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/event"
)

// TestReplayGolden pins the replay fields of the envelopes (replay_of), as
// TestGolden pins the rest (go test -run ReplayGolden -update).
func TestReplayGolden(t *testing.T) {
	replay := &Replay{ErrorID: testID, Attempt: 2}
	cases := map[string]any{
		"raw_event_replay": &RawEvent{EventID: testID, AppID: testApp, ReceivedAt: testTime, ReplayOf: replay,
			Payload: NewPayload([]byte(`{"session_id": "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058", "category": "page interaction", "name": "pageview", "data": {"path": "/"}, "timestamp": "2021-01-01 09:15:27.243860"}`))},
		"event_replay": &Event{ID: testID, AppID: testApp, SessionID: testSess, Category: "page interaction", Name: "pageview",
			Data: json.RawMessage(`{"path":"/"}`), Timestamp: testTime, ClientTimestamp: testTime, ReceivedAt: testTime, ReplayOf: replay},
		"error_replay": &Error{ID: ErrorID(testID, replay), AppID: testApp, SessionID: &testSess, Stage: StageWriter, ReplayOf: replay,
			Reasons:    event.Reasons{{Code: event.CodeUnknownSession, Field: "/session_id", Message: "the session was never registered"}},
			Payload:    NewPayload([]byte(`{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"page interaction","name":"pageview","data":{"path":"/"},"timestamp":"2021-01-01T09:15:27.24386Z"}`)),
			ReceivedAt: testTime, DetectedAt: testTime},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) { checkGolden(t, name, v) })
	}
}

// TestErrorID: a replay's error id is stable per attempt, differs between
// attempts and from the event id; without a replay it is the event id.
func TestErrorID(t *testing.T) {
	first, again := ErrorID(testID, &Replay{ErrorID: testID, Attempt: 1}), ErrorID(testID, &Replay{ErrorID: testID, Attempt: 1})
	second := ErrorID(testID, &Replay{ErrorID: testID, Attempt: 2})
	other := ErrorID(testID, &Replay{ErrorID: uuid.New(), Attempt: 1})
	if ErrorID(testID, nil) != testID || first != again || first == second || first == testID || first == other || first.Version() != 5 {
		t.Fatalf("ids %s %s %s %s", first, again, second, other)
	}
}

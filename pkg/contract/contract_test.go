package contract

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	testTime  = time.Date(2021, 1, 1, 9, 15, 27, 243860000, time.UTC)
	testID    = uuid.MustParse("0190a0b0-0000-7000-8000-000000000001")
	testApp   = uuid.MustParse("0190a0b0-0000-7000-8000-0000000000a1")
	testSess  = uuid.MustParse("9ab1b579-7021-4e0c-8ea1-2ac9f52f3058")
	testTopic = NewTopics("eye.")
)

// TestGolden pins the wire format of every envelope: a diff here is a change
// to a public contract and must be deliberate (go test -run Golden -update).
func TestGolden(t *testing.T) {
	cases := map[string]any{
		"raw_event": &RawEvent{EventID: testID, AppID: testApp, ReceivedAt: testTime,
			Payload: NewPayload([]byte(`{"session_id": "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058", "category": "page interaction", "name": "pageview", "data": {"host": "www.example.com", "path": "/"}, "timestamp": "2021-01-01 09:15:27.243860"}`))},
		"event": &Event{ID: testID, AppID: testApp, SessionID: testSess, Category: "page interaction", Name: "pageview",
			Data: json.RawMessage(`{"host":"www.example.com","path":"/"}`), Timestamp: testTime, ClientTimestamp: testTime.Add(-2 * time.Hour), ReceivedAt: testTime.Add(time.Second)},
		"error": &Error{ID: testID, AppID: testApp, SessionID: &testSess, Stage: StageValidator,
			Reasons:    event.Reasons{{Code: event.CodeEmptyData, Field: "/data", Message: "data must not be empty"}},
			Payload:    NewPayload([]byte(`{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","data":{}}`)),
			ReceivedAt: testTime, DetectedAt: testTime},
		"error_binary": &Error{ID: testID, AppID: testApp, Stage: StageGateway,
			Reasons:    event.Reasons{{Code: event.CodeInvalidJSON, Message: "body is not valid JSON"}},
			Payload:    NewPayload([]byte{0xff, 0xfe, '{'}),
			ReceivedAt: testTime, DetectedAt: testTime},
		"tombstone": &Tombstone{ID: testID, SessionID: testSess, AppID: testApp, RequestedAt: testTime},
		"schema": &Schema{Category: "page interaction", Name: "pageview", Version: 2, CreatedAt: testTime,
			Schema: json.RawMessage(`{"type":"object","required":["host","path"],"properties":{"host":{"type":"string"},"path":{"type":"string"}}}`)},
		"event_with_schema": &Event{ID: testID, AppID: testApp, SessionID: testSess, Category: "page interaction", Name: "pageview",
			Data: json.RawMessage(`{"host":"www.example.com","path":"/"}`), Timestamp: testTime, ClientTimestamp: testTime, ReceivedAt: testTime, SchemaVersion: 2},
		"error_schema_violation": &Error{ID: testID, AppID: testApp, SessionID: &testSess, Stage: StageValidator, SchemaVersion: 2,
			Reasons:    event.Reasons{{Code: "schema_violation", Field: "/data/path", Message: "missing property 'path'"}},
			Payload:    NewPayload([]byte(`{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"page interaction","name":"pageview","data":{"host":"www.example.com"},"timestamp":"2021-01-01T09:15:27Z"}`)),
			ReceivedAt: testTime, DetectedAt: testTime},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			m := checkGolden(t, name, v)
			if typ, _, _ := strings.Cut(name, "_"); m.Headers[HeaderType] != name && m.Headers[HeaderType] != typ {
				t.Fatalf("type header = %q", m.Headers[HeaderType])
			}
		})
	}
}

// checkGolden encodes v and compares it with testdata/<name>.golden.json
// (rewritten with -update); it returns the encoded message.
func checkGolden(t *testing.T, name string, v any) Message {
	t.Helper()
	m, err := Encode(testTopic.Raw, testSess.String(), v)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, m.Value, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("%s changed:\n%s\nwant:\n%s", name, pretty.Bytes(), want)
	}
	return m
}

func TestDecodeRejectsWrongTypeAndVersion(t *testing.T) {
	m, err := Encode("t", "", &Event{ID: testID, AppID: testApp, SessionID: testSess})
	if err != nil {
		t.Fatal(err)
	}
	if err := Decode(m.Value, &Error{}); err == nil {
		t.Fatal("decoding an event as an error record succeeded")
	}
	if err := Decode([]byte(`{"v":2,"type":"event"}`), &Event{}); err == nil {
		t.Fatal("decoding version 2 succeeded")
	}
	var got Event
	if err := Decode(m.Value, &got); err != nil || got.SessionID != testSess {
		t.Fatalf("round trip: %v %+v", err, got)
	}
}

func TestPayloadLossless(t *testing.T) {
	for _, in := range [][]byte{[]byte("plain {"), {0xff, 0x00, 0x80}} {
		out, err := NewPayload(in).Bytes()
		if err != nil || !bytes.Equal(in, out) {
			t.Fatalf("%q -> %q, %v", in, out, err)
		}
	}
}

func TestSchemaKeyEscapes(t *testing.T) {
	for _, tt := range []struct {
		category, name string
		version        int
		want           string
	}{
		{"page interaction", "pageview", 1, "page%20interaction/pageview/1"},
		{"a/b", "c", 2, "a%2Fb/c/2"},
		{"a", "b/c", 2, "a/b%2Fc/2"},
	} {
		if got := SchemaKey(tt.category, tt.name, tt.version); got != tt.want {
			t.Errorf("SchemaKey(%q, %q, %d) = %q, want %q", tt.category, tt.name, tt.version, got, tt.want)
		}
	}
}

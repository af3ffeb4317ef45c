package contract

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	fastjson "github.com/segmentio/encoding/json"

	"github.com/the-eye/eye/pkg/event"
)

// FuzzDecode: whatever bytes arrive on a topic, decoding gives a typed
// error or an envelope that encodes and decodes back to the same record —
// never a panic.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"raw_event", "event", "error", "error_binary", "tombstone", "schema"} {
		if b, err := readGolden(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"v":2,"type":"event"}`))
	f.Add([]byte(`{"v":1,"type":"raw_event","payload":{"encoding":"base64","data":"!!"}}`))
	f.Add([]byte(`{"v":1,"type":"event","timestamp":"0000-01-01T0:00:00,0Z"}`)) // only encoding/json accepts it
	f.Add([]byte(`{"v":1,"type":"event","data":{"a":1,"a":2},"Name":"x","name":"y"}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		sameAsStd[RawEvent](t, value)
		sameAsStd[Event](t, value)
		sameAsStd[Error](t, value)
		sameAsStd[Tombstone](t, value)
		sameAsStd[Schema](t, value)
		var raw RawEvent
		if err := Decode(value, &raw); err == nil {
			again := roundTrip(t, &raw, &RawEvent{})
			if again.(*RawEvent).EventID != raw.EventID || again.(*RawEvent).Payload != raw.Payload {
				t.Fatalf("raw event changed in a round trip: %+v vs %+v", raw, again)
			}
		}
		var ev Event
		if err := Decode(value, &ev); err == nil {
			again := roundTrip(t, &ev, &Event{}).(*Event)
			if again.ID != ev.ID || !sameJSON(again.Data, ev.Data) {
				t.Fatalf("event changed in a round trip")
			}
		}
		var er Error
		if err := Decode(value, &er); err == nil {
			again := roundTrip(t, &er, &Error{}).(*Error)
			if again.ID != er.ID || again.Payload != er.Payload || len(again.Reasons) != len(er.Reasons) {
				t.Fatalf("error record changed in a round trip")
			}
		}
	})
}

// sameAsStd: whenever the fast parser accepts a value (Decode's first
// try), encoding/json accepts it too and decodes it to the same envelope,
// so the parser never changes what a record means.
func sameAsStd[T any](t *testing.T, value []byte) {
	t.Helper()
	var fast, std T
	if fastjson.Unmarshal(value, &fast) != nil {
		return
	}
	if err := json.Unmarshal(value, &std); err != nil {
		t.Fatalf("%T: the fast parser accepts what encoding/json refuses (%v)", fast, err)
	}
	if !reflect.DeepEqual(fast, std) {
		t.Fatalf("%T decodes differently:\nfast %+v\nstd  %+v", fast, fast, std)
	}
}

func roundTrip(t *testing.T, v, into any) any {
	t.Helper()
	m, err := Encode("t", "", v)
	if err != nil {
		t.Fatalf("a decoded envelope does not encode: %v", err)
	}
	if err := Decode(m.Value, into); err != nil {
		t.Fatalf("an encoded envelope does not decode: %v", err)
	}
	return into
}

// sameJSON compares two JSON values by meaning: encoding may escape
// characters differently (e.g. & as \u0026) without changing them. An
// absent value encodes as null.
func sameJSON(a, b []byte) bool {
	var x, y any
	if len(a) == 0 {
		a = []byte("null")
	}
	if len(b) == 0 {
		b = []byte("null")
	}
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func readGolden(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name+".golden.json"))
}

// FuzzEncode: envelopes encode to exactly the bytes encoding/json gives
// (the golden files and every consumer depend on them), whatever the
// strings and raw data inside.
func FuzzEncode(f *testing.F) {
	f.Add("page interaction", []byte(`{"a":"<b>&</b>","u":"\u2028"}`), []byte("payload \xff <x>"))
	f.Add("\x00\u2029", []byte(` [ 1 , {"x" :null} ] `), []byte(`{"k": "v"}`))
	f.Add("", []byte(`{"a":`), []byte{})
	f.Fuzz(func(t *testing.T, text string, data, payload []byte) {
		now := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
		id := uuid.MustParse("01890a5d-ac96-774b-bcce-b302099a8057")
		for _, v := range []any{
			&Event{ID: id, AppID: id, SessionID: id, Category: text, Name: text, Data: data, Timestamp: now, ClientTimestamp: now, ReceivedAt: now},
			&RawEvent{EventID: id, AppID: id, ReceivedAt: now, Payload: NewPayload(payload), ReplayOf: &Replay{ErrorID: id, Attempt: 2}},
			&Error{ID: id, AppID: id, SessionID: &id, Stage: text, Reasons: event.Reasons{{Code: event.Code(text), Field: text, Message: text}}, Payload: NewPayload(payload), ReceivedAt: now, DetectedAt: now},
			&Schema{Category: text, Name: text, Version: 3, Schema: data, CreatedAt: now},
		} {
			got, gotErr := Encode("t", "", v)
			want, wantErr := json.Marshal(v)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%T: Encode error %v, encoding/json error %v", v, gotErr, wantErr)
			}
			if gotErr == nil && !bytes.Equal(got.Value, want) {
				t.Fatalf("%T encodes differently:\nEncode       %s\nencoding/json %s", v, got.Value, want)
			}
		}
	})
}

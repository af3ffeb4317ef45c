package contract

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	fastjson "github.com/segmentio/encoding/json"
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

package jsonx

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	fast "github.com/segmentio/encoding/json"
)

// FuzzSameAsStd: on every input the fast parser accepts, encoding/json
// accepts it too and decodes the shapes the hot paths use (an object of
// raw values, an array of raw values, any value) to the same result; and
// Valid agrees with json.Valid everywhere.
func FuzzSameAsStd(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"\u0061":1,"A":2}`, "{\"k\xff\":\"v\xfe\"}", `[{"x":[1,2]}, "s", 1e400]`,
		`{"n":1e309}`, `[1,2,]`, `{"a":"\ud800"}`, ` {"a" : [ ] } `, `{"a":1} x`, `nul`, `"\u0000"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if Valid(data) != json.Valid(data) {
			t.Fatalf("Valid %v, json.Valid %v", Valid(data), json.Valid(data))
		}
		if json.Valid(data) {
			var want bytes.Buffer
			_ = json.Compact(&want, data)
			if got := AppendCompact(nil, data); !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("AppendCompact %q, json.Compact %q", got, want.Bytes())
			}
		}
		same[map[string]json.RawMessage](t, data)
		same[[]json.RawMessage](t, data)
		same[any](t, data)
		same[string](t, data)
	})
}

func same[T any](t *testing.T, data []byte) {
	t.Helper()
	var f, s T
	if fast.Unmarshal(data, &f) != nil {
		return
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%T: the fast parser accepts what encoding/json refuses (%v)", f, err)
	}
	if !reflect.DeepEqual(f, s) {
		t.Fatalf("%T decodes differently:\nfast %#v\nstd  %#v", f, f, s)
	}
}

// Unmarshal falls back to encoding/json on what the fast parser refuses,
// from a zeroed value.
func TestUnmarshalFallsBack(t *testing.T) {
	var v struct {
		A int
		T json.RawMessage
	}
	v.A = 7
	if err := Unmarshal([]byte(`{"T":[1]}`), &v); err != nil || v.A != 7 || string(v.T) != "[1]" {
		t.Fatalf("%+v %v", v, err)
	}
	if err := Unmarshal([]byte(`{"A":"x"}`), &v); err == nil {
		t.Fatal("a string into an int decoded")
	}
}

package event

import (
	"encoding/json"
	"testing"
)

// A realistic event is vouched for: the fast path is the one events take.
func TestCleanVouchesForOrdinaryEvents(t *testing.T) {
	for _, doc := range []string{
		`{"id":"01890a5d-ac96-774b-bcce-b302099a8057","session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"page interaction","name":"cta click","timestamp":"2026-11-26T10:00:00.123Z","data":{"host":"www.example.com","path":"/pricing","viewport":{"w":1440,"h":900},"tags":["a","b"],"value":-42.5e3,"ok":true,"none":null,"q":"say \"hi\" \u00e9"}}`,
		` { } `, `[]`, `"x"`, `0`, `[[[[1]]]]`,
	} {
		if !clean([]byte(doc)) {
			t.Errorf("clean(%s) = false", doc)
		}
	}
}

// FuzzClean: clean never vouches for a document the careful path refuses.
func FuzzClean(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":"\u0000"}`, `{"\u0000":1}`, `{"a":"\\u0000"}`,
		`[1e999]`, `[-1e-999]`, `{"a":{"b":1},"b":{"a":1}}`, "{\"a\":\"\xff\"}", `{"x":"\ud800","y":1}`,
		`{"\ud800":1,"\udc00":2}`, `[1,[2,{"k":[3]}]]`, `123456789012345678901234567890`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			return
		}
		if clean(doc) {
			if r := inspect(doc); r != nil {
				t.Fatalf("clean vouched for %q, which has %s at %q", doc, r.Code, r.Field)
			}
		}
	})
}

package topicschema

import (
	"os"
	"testing"

	"github.com/the-eye/eye/pkg/contract"
)

func load(t *testing.T) *Checker {
	t.Helper()
	c, err := Load("../../docs")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRecordChecksHeadersAndValue: a record passes only with the headers
// its message declares and a value of the type its eye-type header names.
func TestRecordChecksHeadersAndValue(t *testing.T) {
	c := load(t)
	if got := c.Types(); len(got) != 5 {
		t.Fatalf("envelope types %v", got)
	}
	value, err := os.ReadFile("../contract/testdata/event.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	h := func(typ, version string) map[string]string {
		return map[string]string{contract.HeaderType: typ, contract.HeaderVersion: version}
	}
	if err := c.Record(h(contract.TypeEvent, "1"), []byte("9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"), value); err != nil {
		t.Fatalf("a golden event: %v", err)
	}
	for name, headers := range map[string]map[string]string{
		"another type":    h(contract.TypeError, "1"),
		"version 2":       h(contract.TypeEvent, "2"),
		"no version":      {contract.HeaderType: contract.TypeEvent},
		"no type":         {contract.HeaderVersion: "1"},
		"an unknown type": h("thing", "1"),
		"the dead letter": h(DeadLetterMessage, "1"),
	} {
		if err := c.Record(headers, []byte("9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"), value); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestDeadLetterHeaders: a dead letter needs its three headers, with a
// known stage and a topic/partition/offset source; the original record's
// headers may be there or not.
func TestDeadLetterHeaders(t *testing.T) {
	c := load(t)
	ok := map[string]string{contract.HeaderDLQReason: "not JSON", contract.HeaderDLQStage: "validator", contract.HeaderDLQSource: "eye.events.raw.v1/2/7"}
	if err := c.Headers(DeadLetterMessage, ok); err != nil {
		t.Fatal(err)
	}
	withOriginal := map[string]string{contract.HeaderType: "raw_event", contract.HeaderVersion: "7"}
	for k, v := range ok {
		withOriginal[k] = v
	}
	if err := c.Headers(DeadLetterMessage, withOriginal); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(map[string]string){
		"no reason":       func(h map[string]string) { delete(h, contract.HeaderDLQReason) },
		"a gateway stage": func(h map[string]string) { h[contract.HeaderDLQStage] = "gateway" },
		"a bare source":   func(h map[string]string) { h[contract.HeaderDLQSource] = "eye.events.raw.v1" },
	} {
		h := map[string]string{}
		for k, v := range ok {
			h[k] = v
		}
		edit(h)
		if err := c.Headers(DeadLetterMessage, h); err == nil {
			t.Errorf("%s: accepted %v", name, h)
		}
	}
}

// TestKeys: keys are checked against the Kafka key bindings: a session id
// key must be a UUID, and only some records may have none.
func TestKeys(t *testing.T) {
	c := load(t)
	for _, tc := range []struct {
		message string
		key     []byte
		valid   bool
	}{
		{contract.TypeEvent, []byte("9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"), true},
		{contract.TypeEvent, []byte("session-1"), false},
		{contract.TypeEvent, []byte("9AB1B579-7021-4E0C-8EA1-2AC9F52F3058"), false},
		{contract.TypeSchema, []byte("a/b/c/1"), false},
		{contract.TypeEvent, nil, false},
		{contract.TypeTombstone, nil, false},
		{contract.TypeRawEvent, []byte("session-1"), true},
		{contract.TypeRawEvent, nil, true},
		{contract.TypeError, nil, true},
		{contract.TypeSchema, []byte("page%20interaction/pageview/1"), true},
		{DeadLetterMessage, nil, true},
	} {
		if err := c.Key(tc.message, tc.key); (err == nil) != tc.valid {
			t.Errorf("%s key %q: %v, want valid %v", tc.message, tc.key, err, tc.valid)
		}
	}
}

package event

import (
	"testing"
	"time"
)

// TestBadInputs: every input that must give a specific reason, and never a
// crash.
func TestBadInputs(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	const ok = `"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"c","name":"n","timestamp":"2021-01-01T00:00:00Z"`
	tests := []struct {
		name, doc string
		code      Code
		field     string
	}{
		{"invalid json", `{"a":`, CodeInvalidJSON, ""},
		{"trailing garbage", `{` + ok + `,"data":{"a":1}} x`, CodeInvalidJSON, ""},
		{"top-level array", `[1]`, CodeNotObject, ""},
		{"top-level string", `"x"`, CodeNotObject, ""},
		{"invalid utf-8", "{" + ok + `,"data":{"a":"` + "\xff\xfe" + `"}}`, CodeInvalidUTF8, ""},
		{"nul in value", `{` + ok + `,"data":{"a":"x\u0000y"}}`, CodeNulCharacter, "/data/a"},
		{"nul in key", `{` + ok + `,"data":{"a\u0000":1}}`, CodeNulCharacter, "/data/a\x00"},
		{"escaped backslash is not nul", `{` + ok + `,"data":{"a":"\\u0000"}}`, "", ""},
		{"NaN", `{` + ok + `,"data":{"a":NaN}}`, CodeInvalidJSON, ""},
		{"Infinity", `{` + ok + `,"data":{"a":Infinity}}`, CodeInvalidJSON, ""},
		{"number beyond float64", `{` + ok + `,"data":{"a":[1,2,1e999]}}`, CodeInvalidNumber, "/data/a/2"},
		{"duplicate key", `{` + ok + `,"data":{"a":1,"b":{"c":1,"c":2}}}`, CodeDuplicateKey, "/data/b/c"},
		{"duplicate top-level key", `{` + ok + `,"data":{"a":1},"name":"m"}`, CodeDuplicateKey, "/name"},
		{"pointer escaping", `{` + ok + `,"data":{"a/b":{"x":1,"x":2}}}`, CodeDuplicateKey, "/data/a~1b/x"},
		{"unknown timestamp format", `{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"c","name":"n","data":{"a":1},"timestamp":"01/02/2021"}`, CodeInvalidTimestamp, "/timestamp"},
		{"impossible date", `{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"c","name":"n","data":{"a":1},"timestamp":"2021-13-45T00:00:00Z"}`, CodeInvalidTimestamp, "/timestamp"},
		{"year 0", `{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"c","name":"n","data":{"a":1},"timestamp":"0000-01-01T00:00:00Z"}`, CodeInvalidTimestamp, "/timestamp"},
		{"year 10000", `{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"c","name":"n","data":{"a":1},"timestamp":"10000-01-01T00:00:00Z"}`, CodeInvalidTimestamp, "/timestamp"},
		{"non-uuid session", `{"session_id":"12345","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01T00:00:00Z"}`, CodeInvalidSessionID, "/session_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := DefaultRules().Validate([]byte(tt.doc), now)
			if tt.code == "" {
				if errs != nil {
					t.Fatalf("rejected: %v", errs)
				}
				return
			}
			if len(errs) == 0 || errs[0].Code != tt.code || errs[0].Field != tt.field {
				t.Fatalf("got %+v, want %s at %q", errs, tt.code, tt.field)
			}
		})
	}
}

// FuzzValidate: any input is rejected with typed reasons, or accepted with
// data that is a non-empty JSON object free of what Postgres refuses.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`,
		`{"session":{"id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"},"category":"c","name":"n","data":{"a":"\u0000"},"timestamp":"2021-01-01T00:00:00+01:00","sent_at":"2021-01-01T00:00:01Z"}`,
		`{"a":1,"a":2}`, `[`, `{"data":{"x":1e400}}`, "{\"data\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, doc []byte) {
		fields, errs := DefaultRules().ValidateReceived(doc, now, now)
		if len(errs) > 0 {
			for _, r := range errs {
				if r.Code == "" || r.Message == "" {
					t.Fatalf("untyped reason %+v", r)
				}
			}
			return
		}
		if len(fields.Data) < 2 || fields.Data[0] != '{' || Inspect(fields.Data) != nil {
			t.Fatalf("accepted data %q is not a clean object", fields.Data)
		}
		if fields.Timestamp.After(now.Add(time.Minute)) || fields.Timestamp.Year() < 1 || fields.Timestamp.Year() > 9999 {
			t.Fatalf("accepted timestamp %s", fields.Timestamp)
		}
	})
}

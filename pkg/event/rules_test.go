package event

import (
	"slices"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	const sid = "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"
	tests := []struct {
		name    string
		payload string
		want    []Code
	}{
		{"seed shape", `{"session":{"id":"` + sid + `"},"category":"page interaction","name":"pageview","data":{"host":"h","path":"/"},"timestamp":"2021-06-15 00:00:00"}`, nil},
		{"flat shape rfc3339", `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2021-06-15T00:00:00+02:00"}`, nil},
		{"within skew tolerance", `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2026-06-01T12:00:30Z"}`, nil},
		{"not json", `{"session_id":`, []Code{CodeInvalidJSON}},
		{"array", `[1,2]`, []Code{CodeNotObject}},
		{"empty data", `{"session_id":"` + sid + `","category":"c","name":"n","data":{},"timestamp":"2021-06-15 00:00:00"}`, []Code{CodeEmptyData}},
		{"data not object", `{"session_id":"` + sid + `","category":"c","name":"n","data":"x","timestamp":"2021-06-15 00:00:00"}`, []Code{CodeInvalidData}},
		{"future", `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2027-01-01 00:00:00"}`, []Code{CodeFutureTimestamp}},
		{"bad timestamp", `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"yesterday"}`, []Code{CodeInvalidTimestamp}},
		{"impossible date", `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2021-02-30 00:00:00"}`, []Code{CodeInvalidTimestamp}},
		{"year zero", `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"0000-01-01T00:00:00Z"}`, []Code{CodeInvalidTimestamp}},
		{"numeric timestamp", `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":1}`, []Code{CodeInvalidTimestamp}},
		{"bad session", `{"session_id":"abc","category":"c","name":"n","data":{"a":1},"timestamp":"2021-06-15 00:00:00"}`, []Code{CodeInvalidSessionID}},
		{"urn session", `{"session_id":"urn:uuid:` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2021-06-15 00:00:00"}`, []Code{CodeInvalidSessionID}},
		{"missing everything", `{}`, []Code{CodeMissingField, CodeMissingField, CodeMissingField, CodeMissingField, CodeMissingField}},
		{"empty category", `{"session_id":"` + sid + `","category":"","name":"n","data":{"a":1},"timestamp":"2021-06-15 00:00:00"}`, []Code{CodeMissingField}},
		{"category not string", `{"session_id":"` + sid + `","category":5,"name":"n","data":{"a":1},"timestamp":"2021-06-15 00:00:00"}`, []Code{CodeInvalidField}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, errs := DefaultRules().Validate([]byte(tt.payload), now)
			if got := errs.Codes(); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("codes = %v, want %v (%v)", got, tt.want, errs)
			}
			if tt.want == nil && f.SessionID.String() != sid {
				t.Fatalf("session = %s", f.SessionID)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2021-01-01 09:15:27.243860", "2021-01-01T09:15:27.24386Z"},
		{"2021-01-01T09:15:27Z", "2021-01-01T09:15:27Z"},
		{"2021-01-01T09:15:27.1234567+01:00", "2021-01-01T08:15:27.123456Z"},
		{"2021-01-01T09:15:27", "2021-01-01T09:15:27Z"},
	}
	for _, tt := range tests {
		got, err := ParseTimestamp(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if s := got.Format(time.RFC3339Nano); s != tt.want {
			t.Errorf("%s: got %s, want %s", tt.in, s, tt.want)
		}
	}
}

func TestSentAtCorrectsClockSkew(t *testing.T) {
	const sid = "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"
	received := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	// The device clock is two hours fast: it says the event happened at
	// 14:00:00 and was sent at 14:00:05; the server received it at 12:00:00.
	doc := `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2026-06-01T14:00:00Z","sent_at":"2026-06-01T14:00:05Z"}`
	f, errs := DefaultRules().ValidateReceived([]byte(doc), received, received)
	if errs != nil {
		t.Fatal(errs)
	}
	if want := received.Add(-5 * time.Second); !f.Timestamp.Equal(want) {
		t.Fatalf("timestamp %s, want %s", f.Timestamp, want)
	}
	if !f.ClientTimestamp.Equal(time.Date(2026, 6, 1, 14, 0, 0, 0, time.UTC)) {
		t.Fatalf("client timestamp %s", f.ClientTimestamp)
	}
	// Without correction that event would be in the future.
	if _, errs := DefaultRules().Validate([]byte(doc), received); len(errs) != 1 || errs[0].Code != CodeFutureTimestamp {
		t.Fatalf("uncorrected: %v", errs)
	}
	bad := `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2026-06-01T11:00:00Z","sent_at":"soon"}`
	if _, errs := DefaultRules().ValidateReceived([]byte(bad), received, received); len(errs) != 1 || errs[0].Field != "/sent_at" {
		t.Fatalf("bad sent_at: %v", errs)
	}
}

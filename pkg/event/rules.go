package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/jsonx"
)

// Fields are the validated parts of an event that a client supplies.
type Fields struct {
	SessionID uuid.UUID
	Category  string
	Name      string
	Data      json.RawMessage
	Timestamp time.Time // when it happened, corrected for device clock skew
	// ClientTimestamp is the timestamp exactly as the client's clock said.
	ClientTimestamp time.Time
	// Object is the document decoded as a JSON object, for further checks
	// (a type's schema), set even when the rules fail; nil when the
	// document is not a JSON object.
	Object map[string]json.RawMessage
}

// Rules are the validation rules every stage applies to an event document.
type Rules struct {
	// FutureTolerance is how far past now a timestamp may be, to absorb
	// client clock skew.
	FutureTolerance time.Duration
	// MaxTextLength bounds category and name, in characters.
	MaxTextLength int
}

// DefaultRules are the rules with the documented defaults.
func DefaultRules() Rules {
	return Rules{FutureTolerance: time.Minute, MaxTextLength: 255}
}

// Validate decodes one event document and checks every rule, returning all
// reasons it fails at once so a client can fix them in one go. A document
// that JSON allows but that cannot be stored faithfully (invalid UTF-8, NUL
// characters, numbers beyond float64, duplicate keys) fails with that one
// reason.
func (r Rules) Validate(payload []byte, now time.Time) (Fields, Reasons) {
	return r.ValidateReceived(payload, time.Time{}, now)
}

// DecodeObject decodes a JSON document that must be an object, keeping the
// values raw. It returns an invalid_json or not_an_object reason otherwise.
func DecodeObject(payload []byte) (map[string]json.RawMessage, *Reason) {
	obj := make(map[string]json.RawMessage, 8) // the fast parser would make room for 64
	if err := jsonx.Unmarshal(payload, &obj); err != nil || obj == nil {
		if !jsonx.Valid(payload) {
			return nil, &Reason{Code: CodeInvalidJSON, Message: "body is not valid JSON"}
		}
		return nil, &Reason{Code: CodeNotObject, Message: "an event must be a JSON object"}
	}
	return obj, nil
}

// ValidateReceived is Validate for an event received at received: when the
// event carries "sent_at" (the client's clock when it sent the event), its
// timestamp is corrected for the device's clock skew,
// timestamp = received − (sent_at − timestamp), and the client's own
// timestamp is kept in ClientTimestamp.
func (r Rules) ValidateReceived(payload []byte, received, now time.Time) (Fields, Reasons) {
	obj, reason := DecodeObject(payload)
	if reason == nil {
		reason = Inspect(payload)
	}
	if reason != nil {
		return Fields{Object: obj}, Reasons{*reason}
	}
	return r.validate(obj, received, now)
}

// ValidateObject checks the rules on an already decoded event object: its
// values are valid JSON, as a decoder gives them.
func (r Rules) ValidateObject(obj map[string]json.RawMessage, now time.Time) (Fields, Reasons) {
	return r.validate(obj, time.Time{}, now)
}

func (r Rules) validate(obj map[string]json.RawMessage, received, now time.Time) (Fields, Reasons) {
	var (
		f    = Fields{Object: obj}
		errs Reasons
	)
	add := func(code Code, field, format string, args ...any) {
		errs = append(errs, Reason{Code: code, Field: field, Message: fmt.Sprintf(format, args...)})
	}

	sid, field, ok := SessionRef(obj)
	switch {
	case !ok:
		add(CodeMissingField, "/session_id", "session_id (or session.id) is required")
	default:
		if id, ok := ParseSessionID(sid); ok {
			f.SessionID = id
		} else {
			add(CodeInvalidSessionID, field, "session id %q is not a UUID", Truncate(sid, 64))
		}
	}

	f.Category = r.text(obj, "category", add)
	f.Name = r.text(obj, "name", add)

	switch raw, ok := obj["data"]; {
	case !ok || isNull(raw):
		add(CodeMissingField, "/data", "data is required")
	case raw[0] != '{':
		add(CodeInvalidData, "/data", "data must be a JSON object")
	case emptyObject(raw):
		add(CodeEmptyData, "/data", "data must not be empty")
	default:
		f.Data = jsonx.AppendCompact(make([]byte, 0, len(raw)), raw)
	}

	if t, ok := r.timestamp(obj, "timestamp", true, add); ok {
		f.ClientTimestamp, f.Timestamp = t, t
		if sent, ok := r.timestamp(obj, "sent_at", false, add); ok && !received.IsZero() {
			f.Timestamp = Canonical(received.Add(-sent.Sub(t)))
		}
		switch {
		case f.Timestamp.Year() < 1 || f.Timestamp.Year() > 9999:
			add(CodeInvalidTimestamp, "/timestamp", "corrected for sent_at, the timestamp falls outside years 1..9999")
		case f.Timestamp.After(now.Add(r.FutureTolerance)):
			add(CodeFutureTimestamp, "/timestamp", "timestamp %s is in the future", f.Timestamp.Format(time.RFC3339Nano))
		}
	}
	if len(errs) > 0 {
		return Fields{Object: obj}, errs
	}
	return f, nil
}

// timestamp reads a timestamp field; a missing optional one is not an error.
func (r Rules) timestamp(obj map[string]json.RawMessage, key string, required bool, add func(Code, string, string, ...any)) (time.Time, bool) {
	ptr := "/" + key
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		if required {
			add(CodeMissingField, ptr, "%s is required", key)
		}
		return time.Time{}, false
	}
	var s string
	if err := jsonx.Unmarshal(raw, &s); err != nil {
		add(CodeInvalidTimestamp, ptr, "%s must be a string", key)
		return time.Time{}, false
	}
	t, err := ParseTimestamp(s)
	if err != nil {
		add(CodeInvalidTimestamp, ptr, "%q: %v", Truncate(s, 64), err)
		return time.Time{}, false
	}
	if y := t.Year(); y < 1 || y > 9999 {
		add(CodeInvalidTimestamp, ptr, "year %d is outside 1..9999", y)
		return time.Time{}, false
	}
	return t, true
}

// text reads a required, non-empty string field of bounded length.
func (r Rules) text(obj map[string]json.RawMessage, key string, add func(Code, string, string, ...any)) string {
	ptr := "/" + key
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		add(CodeMissingField, ptr, "%s is required", key)
		return ""
	}
	var s string
	if err := jsonx.Unmarshal(raw, &s); err != nil {
		add(CodeInvalidField, ptr, "%s must be a string", key)
		return ""
	}
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		add(CodeMissingField, ptr, "%s must not be empty", key)
	case n > r.MaxTextLength:
		add(CodeInvalidField, ptr, "%s is longer than %d characters", key, r.MaxTextLength)
	default:
		return s
	}
	return ""
}

// ParseSessionID accepts a session id in the canonical 36-character UUID
// form only (any case), not the braced, URN or bare-hex forms uuid.Parse
// also takes, so every stage agrees on what a session id is.
func ParseSessionID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

// SessionRef finds the session id in either accepted shape,
// "session_id": "<uuid>" or the seed's "session": {"id": "<uuid>"}. It
// returns the id text, the JSON pointer it came from, and whether a string
// was found at all.
func SessionRef(obj map[string]json.RawMessage) (id, field string, ok bool) {
	if raw, found := obj["session_id"]; found && !isNull(raw) {
		return stringValue(raw), "/session_id", true
	}
	raw, found := obj["session"]
	if !found || isNull(raw) {
		return "", "", false
	}
	var nested map[string]json.RawMessage
	if err := jsonx.Unmarshal(raw, &nested); err != nil {
		return stringValue(raw), "/session", true
	}
	inner, found := nested["id"]
	if !found || isNull(inner) {
		return "", "", false
	}
	return stringValue(inner), "/session/id", true
}

// stringValue returns a JSON string's value, or the raw JSON text for any
// other value so it can be reported.
func stringValue(raw json.RawMessage) string {
	var s string
	if err := jsonx.Unmarshal(raw, &s); err != nil {
		return string(raw)
	}
	return s
}

// emptyObject reports whether raw, a JSON object, has no members.
func emptyObject(raw json.RawMessage) bool {
	rest := bytes.TrimLeft(raw[1:], " \t\r\n")
	return len(rest) > 0 && rest[0] == '}'
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// Truncate cuts s to at most n bytes on a character boundary, marking the
// cut with "…": for quoting client input in reasons.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

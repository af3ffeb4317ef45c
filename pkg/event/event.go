// Package event is The Eye's domain model: what an event is, the rules an
// event must satisfy, and the typed reasons it can be rejected for. It knows
// nothing of HTTP, Kafka or SQL; every service applies the same rules through
// it.
package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Event is a validated, canonical user-behaviour event.
type Event struct {
	ID         uuid.UUID
	AppID      uuid.UUID
	SessionID  uuid.UUID
	Category   string
	Name       string
	Data       json.RawMessage // a non-empty JSON object, compacted
	Timestamp  time.Time       // UTC, microsecond precision, corrected for clock skew
	ReceivedAt time.Time       // UTC, microsecond precision
	// ClientTimestamp is the timestamp as the client's clock said.
	ClientTimestamp time.Time
}

// Code names why an event was rejected. Codes are part of the public
// contract (error records on the errors topic and in the query API).
type Code string

// Reason codes: every one of them is declared here, in one block, so the
// generated API docs list them in a stable order.
const (
	// The document itself.
	CodeInvalidJSON   Code = "invalid_json"
	CodeNotObject     Code = "not_an_object"
	CodeInvalidUTF8   Code = "invalid_utf8"
	CodeNulCharacter  Code = "nul_character"  // Postgres jsonb refuses \u0000
	CodeInvalidNumber Code = "invalid_number" // beyond a 64-bit float
	CodeDuplicateKey  Code = "duplicate_key"
	CodeTooLarge      Code = "too_large"
	CodeTooDeep       Code = "too_deep"
	CodeInvalidID     Code = "invalid_id" // a client id that is not a UUID

	// The event's fields.
	CodeMissingField     Code = "missing_field"
	CodeInvalidField     Code = "invalid_field"
	CodeEmptyData        Code = "empty_data"
	CodeInvalidData      Code = "invalid_data"
	CodeInvalidTimestamp Code = "invalid_timestamp"
	CodeFutureTimestamp  Code = "future_timestamp"
	CodeInvalidSessionID Code = "invalid_session_id"

	// Per-type schemas (package schema).
	CodeUnknownEventType     Code = "unknown_event_type"     // strict types, and the type has no schema
	CodeUnknownSchemaVersion Code = "unknown_schema_version" // schema_version names no version of the type
	CodeSchemaViolation      Code = "schema_violation"       // data fails the type's schema

	// Sessions (writer).
	CodeUnknownSession Code = "unknown_session"  // strict sessions, and the session was never registered
	CodeSessionOwner   Code = "session_conflict" // the session belongs to another application

	// The pipeline itself.
	CodeInvalidEnvelope Code = "invalid_envelope" // a record no stage of The Eye wrote
	CodeStorageRejected Code = "storage_rejected" // Postgres refused the row

	// Replays (query API): a record whose application is not known
	// (invalid_envelope) cannot be replayed, the event would belong to
	// nobody. It appears only in replay answers.
	CodeUnknownApplication Code = "unknown_application"
)

// Reason is one thing wrong with an event: a code, the JSON pointer of the
// field it concerns ("" for the whole document) and a human message.
type Reason struct {
	Code    Code   `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Reasons is a list of rejection reasons; it is an error when non-empty.
type Reasons []Reason

func (r Reasons) Error() string {
	var b bytes.Buffer
	for i, x := range r {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(string(x.Code))
		if x.Field != "" {
			fmt.Fprintf(&b, " at %s", x.Field)
		}
		b.WriteString(": ")
		b.WriteString(x.Message)
	}
	return b.String()
}

// Codes returns the reason codes in order.
func (r Reasons) Codes() []Code {
	out := make([]Code, len(r))
	for i, x := range r {
		out[i] = x.Code
	}
	return out
}

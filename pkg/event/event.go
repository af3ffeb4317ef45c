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

// Reason codes.
const (
	CodeInvalidJSON      Code = "invalid_json"
	CodeNotObject        Code = "not_an_object"
	CodeMissingField     Code = "missing_field"
	CodeInvalidField     Code = "invalid_field"
	CodeEmptyData        Code = "empty_data"
	CodeInvalidData      Code = "invalid_data"
	CodeInvalidTimestamp Code = "invalid_timestamp"
	CodeFutureTimestamp  Code = "future_timestamp"
	CodeInvalidSessionID Code = "invalid_session_id"
	CodeInvalidEnvelope  Code = "invalid_envelope"
	CodeStorageRejected  Code = "storage_rejected"
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

// Reason codes the gateway assigns before an event reaches the validator.
const (
	CodeTooLarge       Code = "too_large"
	CodeTooDeep        Code = "too_deep"
	CodeInvalidID      Code = "invalid_id"
	CodeUnknownSession Code = "unknown_session"
	CodeSessionOwner   Code = "session_conflict"
)

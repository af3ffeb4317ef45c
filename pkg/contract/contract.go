// Package contract defines The Eye's topics and the versioned JSON envelopes
// on them. Other teams consume these topics directly: every change here is a
// change to a public contract, pinned by the golden files in testdata/ and
// documented in docs/topics.md.
package contract

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/event"
)

// Version is the envelope version written in the "v" field of every record.
const Version = 1

// Header names set on every record.
const (
	// HeaderType names the envelope type, e.g. "raw_event".
	HeaderType = "eye-type"
	// HeaderVersion is the envelope version as decimal text.
	HeaderVersion = "eye-version"
)

// Envelope types, written in the HeaderType header and the "type" field.
const (
	TypeRawEvent = "raw_event"
	TypeEvent    = "event"
	TypeError    = "error"
)

// Topics are the topic names the pipeline uses.
type Topics struct {
	Raw    string // raw events from the gateway, key = session id
	Events string // validated events, key = session id
	Errors string // error records, key = session id when known
}

// NewTopics names the topics with a common prefix ("eye." by default).
func NewTopics(prefix string) Topics {
	return Topics{
		Raw:    prefix + "events.raw.v1",
		Events: prefix + "events.valid.v1",
		Errors: prefix + "events.errors.v1",
	}
}

// All lists every topic.
func (t Topics) All() []string { return []string{t.Raw, t.Events, t.Errors} }

// Message is a record to publish or a record consumed, independent of the
// Kafka client.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers map[string]string
}

// RawEvent is what the gateway writes to the raw topic: one event document
// exactly as the client sent it (byte for byte, in Payload), stamped with an
// id, the application and the time it was received.
type RawEvent struct {
	V          int       `json:"v"`
	Type       string    `json:"type"`
	EventID    uuid.UUID `json:"event_id"`
	AppID      uuid.UUID `json:"app_id"`
	ReceivedAt time.Time `json:"received_at"`
	Payload    Payload   `json:"payload"`
}

// Event is a validated event on the events topic.
type Event struct {
	V         int             `json:"v"`
	Type      string          `json:"type"`
	ID        uuid.UUID       `json:"id"`
	AppID     uuid.UUID       `json:"app_id"`
	SessionID uuid.UUID       `json:"session_id"`
	Category  string          `json:"category"`
	Name      string          `json:"name"`
	Data      json.RawMessage `json:"data"`
	Timestamp time.Time       `json:"timestamp"`
	// ClientTimestamp is the timestamp as the client's clock said; it
	// differs from Timestamp when the event carried sent_at and the device
	// clock was skewed.
	ClientTimestamp time.Time `json:"client_timestamp"`
	ReceivedAt      time.Time `json:"received_at"`
}

// Stages that detect errors.
const (
	StageGateway   = "gateway"
	StageValidator = "validator"
	StageWriter    = "writer"
)

// Error is an error record on the errors topic: why an event was rejected,
// where, and the original payload, losslessly.
type Error struct {
	V          int           `json:"v"`
	Type       string        `json:"type"`
	ID         uuid.UUID     `json:"id"`
	AppID      uuid.UUID     `json:"app_id"`
	SessionID  *uuid.UUID    `json:"session_id"`
	Stage      string        `json:"stage"`
	Reasons    event.Reasons `json:"reasons"`
	Payload    Payload       `json:"payload"`
	ReceivedAt time.Time     `json:"received_at"`
	DetectedAt time.Time     `json:"detected_at"`
}

// Payload holds original bytes: as text when they are valid UTF-8,
// otherwise base64 ("encoding": "base64"), so nothing is lost.
type Payload struct {
	Encoding string `json:"encoding"` // "utf8" or "base64"
	Data     string `json:"data"`
}

// NewPayload wraps original bytes losslessly.
func NewPayload(b []byte) Payload {
	if utf8.Valid(b) {
		return Payload{Encoding: "utf8", Data: string(b)}
	}
	return Payload{Encoding: "base64", Data: base64.StdEncoding.EncodeToString(b)}
}

// Bytes returns the original bytes.
func (p Payload) Bytes() ([]byte, error) {
	if p.Encoding == "base64" {
		return base64.StdEncoding.DecodeString(p.Data)
	}
	return []byte(p.Data), nil
}

// Encode marshals an envelope into a Message for topic, keyed by key,
// with the type and version headers set. The envelope's V and Type fields
// are filled in here so no producer can forget them.
func Encode(topic, key string, v any) (Message, error) {
	var typ string
	switch e := v.(type) {
	case *RawEvent:
		e.V, e.Type, typ = Version, TypeRawEvent, TypeRawEvent
	case *Event:
		e.V, e.Type, typ = Version, TypeEvent, TypeEvent
	case *Error:
		e.V, e.Type, typ = Version, TypeError, TypeError
	default:
		return Message{}, fmt.Errorf("contract: cannot encode %T", v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, fmt.Errorf("contract: encode %s: %w", typ, err)
	}
	m := Message{Topic: topic, Value: b, Headers: map[string]string{HeaderType: typ, HeaderVersion: strconv.Itoa(Version)}}
	if key != "" {
		m.Key = []byte(key)
	}
	return m, nil
}

// Decode unmarshals a record's value into v, checking its version and type.
func Decode(value []byte, v any) error {
	var head struct {
		V    int    `json:"v"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(value, &head); err != nil {
		return fmt.Errorf("contract: not a JSON envelope: %w", err)
	}
	if head.V != Version {
		return fmt.Errorf("contract: unsupported envelope version %d", head.V)
	}
	var want string
	switch v.(type) {
	case *RawEvent:
		want = TypeRawEvent
	case *Event:
		want = TypeEvent
	case *Error:
		want = TypeError
	default:
		return fmt.Errorf("contract: cannot decode into %T", v)
	}
	if head.Type != want {
		return fmt.Errorf("contract: envelope type %q, want %q", head.Type, want)
	}
	if err := json.Unmarshal(value, v); err != nil {
		return fmt.Errorf("contract: decode %s: %w", want, err)
	}
	return nil
}

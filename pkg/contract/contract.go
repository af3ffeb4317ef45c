// Package contract defines The Eye's topics and the versioned JSON envelopes
// on them. Other teams consume these topics directly: every change here is a
// change to a public contract, pinned by the golden files in testdata/ and
// documented in docs/topics.md.
package contract

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/jsonx"
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
	// TypeTombstone is a session erasure on the erasures topic.
	TypeTombstone = "tombstone"
	// TypeSchema is one version of an event type's JSON Schema on the
	// schemas topic.
	TypeSchema = "schema"
)

// Topics are the topic names the pipeline uses.
type Topics struct {
	Raw    string // raw events from the gateway, key = session id
	Events string // validated events, key = session id
	Errors string // error records, key = session id when known
	// DeadLetter receives records that cannot even be decoded, exactly as
	// they were, with the reason in headers (see DeadLetter).
	DeadLetter string
	// Erasures carries a Tombstone for every erased session, key = session
	// id: consumers of the other topics delete what they hold of it.
	Erasures string
	// Schemas carries every version of every event type's JSON Schema,
	// key = SchemaKey. It is compacted and has one partition, so it is not
	// in All (which EnsureTopics creates with the default policy): services
	// create it with kafkax.EnsureCompactedTopic.
	Schemas string
}

// NewTopics names the topics with a common prefix ("eye." by default).
func NewTopics(prefix string) Topics {
	return Topics{
		Raw:        prefix + "events.raw.v1",
		Events:     prefix + "events.valid.v1",
		Errors:     prefix + "events.errors.v1",
		DeadLetter: prefix + "deadletter.v1",
		Erasures:   prefix + "erasures.v1",
		Schemas:    prefix + "schemas.v1",
	}
}

// All lists every topic.
func (t Topics) All() []string { return []string{t.Raw, t.Events, t.Errors, t.DeadLetter, t.Erasures} }

// Message is a record to publish or a record consumed, independent of the
// Kafka client.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers map[string]string
	// Partition and Offset locate a consumed record; unset when publishing.
	Partition int
	Offset    int64
}

// Dead-letter headers, added to the record's own.
const (
	HeaderDLQReason = "eye-dlq-reason" // why the record could not be decoded
	HeaderDLQStage  = "eye-dlq-stage"  // the stage that gave up on it
	HeaderDLQSource = "eye-dlq-source" // topic/partition/offset it came from
)

// DeadLetter is m, unchanged (key, value and headers), for the dead-letter
// topic, with why stage could not decode it and where it came from in
// headers.
func DeadLetter(topic string, m Message, stage string, reason error) Message {
	h := make(map[string]string, len(m.Headers)+3)
	for k, v := range m.Headers {
		h[k] = v
	}
	h[HeaderDLQReason] = reason.Error()
	h[HeaderDLQStage] = stage
	h[HeaderDLQSource] = fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)
	return Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: h}
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
	// ReplayOf is set when the query API replays an error record
	// (POST /errors/{id}/replay): EventID is then the event the record was
	// about, ReceivedAt its original time and Payload the original or the
	// corrected document.
	ReplayOf *Replay `json:"replay_of,omitempty"`
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
	// SchemaVersion is the version of the type's JSON Schema the data was
	// validated against; 0 (omitted) when the type has no schema.
	SchemaVersion int `json:"schema_version,omitempty"`
	// ReplayOf is copied from the raw event: set when the event comes from
	// a replay of an error record.
	ReplayOf *Replay `json:"replay_of,omitempty"`
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
	// SchemaVersion is the version of the JSON Schema of the event's type
	// (category and name in the payload) that applied; 0 (omitted) when
	// none did.
	SchemaVersion int `json:"schema_version,omitempty"`
	// ReplayOf is set when a replayed event failed again: the replay it
	// came from. The record's ID is then ErrorID(event id, ReplayOf), not
	// the event id, so the replayed record keeps its own.
	ReplayOf *Replay `json:"replay_of,omitempty"`
}

// Replay identifies one replay of an error record: the record and the
// attempt (1 for its first replay, 2 for the next, …).
type Replay struct {
	ErrorID uuid.UUID `json:"error_id"`
	Attempt int       `json:"attempt"`
}

// ErrorID is the id of the error record for event eventID when it fails:
// the event id itself, or, for a replay, a UUIDv5 in the event id's
// namespace of "replay/<error id>/<attempt>". A redelivered record gets
// the same id (stored once), while every replay attempt that fails again
// gets a record of its own instead of colliding with the one it replays.
func ErrorID(eventID uuid.UUID, replay *Replay) uuid.UUID {
	if replay == nil {
		return eventID
	}
	return uuid.NewSHA1(eventID, []byte("replay/"+replay.ErrorID.String()+"/"+strconv.Itoa(replay.Attempt)))
}

// Tombstone is an erasure on the erasures topic: every record of the
// session, on every topic and in every store derived from them, is to be
// deleted. The query API publishes it (acknowledged by all in-sync replicas)
// before it deletes the session from Postgres, so it may be published more
// than once for one session; applying it twice is harmless.
type Tombstone struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	// ID identifies this erasure request (a UUIDv7); a retried request gets
	// a new one.
	ID        uuid.UUID `json:"id"`
	SessionID uuid.UUID `json:"session_id"`
	// AppID is the session's application, or the nil UUID when The Eye
	// holds nothing of the session.
	AppID uuid.UUID `json:"app_id"`
	// RequestedAt is when the erasure was requested: records of the session
	// received after it are not covered.
	RequestedAt time.Time `json:"requested_at"`
}

// Schema is one version of an event type's JSON Schema on the schemas
// topic, published by query-api once it is stored in Postgres. Versions are
// immutable: a version is published again only with the same content.
type Schema struct {
	V        int    `json:"v"`
	Type     string `json:"type"`
	Category string `json:"category"`
	Name     string `json:"name"`
	Version  int    `json:"version"`
	// Schema is the JSON Schema document; it validates the event's data.
	Schema    json.RawMessage `json:"schema"`
	CreatedAt time.Time       `json:"created_at"`
}

// SchemaKey is the record key of a schema version: category, name and
// version, each path-escaped (RFC 3986), joined by "/", e.g.
// "page%20interaction/pageview/1". Escaping keeps keys of different types
// distinct when a category or name contains "/".
func SchemaKey(category, name string, version int) string {
	return url.PathEscape(category) + "/" + url.PathEscape(name) + "/" + strconv.Itoa(version)
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
	var (
		typ string
		raw json.RawMessage // a raw JSON field, which jsonx.Marshal needs valid
	)
	switch e := v.(type) {
	case *RawEvent:
		e.V, e.Type, typ = Version, TypeRawEvent, TypeRawEvent
	case *Event:
		e.V, e.Type, typ, raw = Version, TypeEvent, TypeEvent, e.Data
	case *Error:
		e.V, e.Type, typ = Version, TypeError, TypeError
	case *Tombstone:
		e.V, e.Type, typ = Version, TypeTombstone, TypeTombstone
	case *Schema:
		e.V, e.Type, typ, raw = Version, TypeSchema, TypeSchema, e.Schema
	default:
		return Message{}, fmt.Errorf("contract: cannot encode %T", v)
	}
	marshal := jsonx.Marshal
	if len(raw) > 0 && !jsonx.Valid(raw) {
		marshal = json.Marshal // for its error
	}
	b, err := marshal(v)
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
// The value is parsed once (this is the consumers' hot path): every
// envelope carries its own v and type fields, checked after decoding.
//
// Parsing is jsonx.Unmarshal, ≈ 6× faster than encoding/json on an event
// envelope (it was half the writer's CPU). The fast parser is stricter on a
// few inputs (e.g. time.Time from "0000-01-01T0:00:00,0Z"); encoding/json
// then decides, so a record is never dead-lettered because of the parser.
// FuzzDecode checks that both agree whenever the fast one accepts.
func Decode(value []byte, v any) error {
	var (
		want      string
		ver       *int
		typ       *string
		wrongType error
	)
	switch e := v.(type) {
	case *RawEvent:
		want, ver, typ = TypeRawEvent, &e.V, &e.Type
	case *Event:
		want, ver, typ = TypeEvent, &e.V, &e.Type
	case *Error:
		want, ver, typ = TypeError, &e.V, &e.Type
	case *Tombstone:
		want, ver, typ = TypeTombstone, &e.V, &e.Type
	case *Schema:
		want, ver, typ = TypeSchema, &e.V, &e.Type
	default:
		return fmt.Errorf("contract: cannot decode into %T", v)
	}
	if err := jsonx.Unmarshal(value, v); err != nil {
		var head struct {
			V    int    `json:"v"`
			Type string `json:"type"`
		}
		if json.Unmarshal(value, &head) != nil {
			return fmt.Errorf("contract: not a JSON envelope: %w", err)
		}
		// A record of another type or version fails on its own terms:
		// report that rather than the field that did not fit.
		*ver, *typ, wrongType = head.V, head.Type, err
	}
	if *ver != Version {
		return fmt.Errorf("contract: unsupported envelope version %d", *ver)
	}
	if *typ != want {
		return fmt.Errorf("contract: envelope type %q, want %q", *typ, want)
	}
	if wrongType != nil {
		return fmt.Errorf("contract: decode %s: %w", want, wrongType)
	}
	return nil
}

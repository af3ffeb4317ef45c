// Package query is the query API's domain: events, sessions and error
// records read with filters and keyset pagination, events changed under the
// same validation rules as ingestion (with If-Match preconditions and an
// audit), sessions erased after their tombstone is published, and error
// records replayed under the validator's checks. It declares the storage it
// needs (Store and the interfaces it embeds) and knows no SQL; package
// postgres implements them.
package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
)

// Event is a stored event.
type Event struct {
	ID            uuid.UUID `json:"id"`
	ApplicationID uuid.UUID `json:"application_id"`
	SessionID     uuid.UUID `json:"session_id"`
	// Session is the session as the seed's clients wrote it:
	// {"id": session_id}.
	Session   SessionRef      `json:"session"`
	Category  string          `json:"category" example:"page interaction"`
	Name      string          `json:"name" example:"pageview"`
	Data      json.RawMessage `json:"data" swaggertype:"object"`
	Timestamp apitime.Time    `json:"timestamp"`
	// ClientTimestamp is the timestamp as the client's clock said, when it
	// sent sent_at and so Timestamp was corrected for clock skew.
	ClientTimestamp *apitime.Time `json:"client_timestamp" extensions:"x-nullable"`
	ReceivedAt      apitime.Time  `json:"received_at"`
	Version         int           `json:"version" example:"1"`
	UpdatedAt       *apitime.Time `json:"updated_at" extensions:"x-nullable"`
	// ReplayedFrom is the error record whose replay stored this event
	// (POST /errors/{id}/replay); null for an event ingested directly.
	ReplayedFrom *uuid.UUID `json:"replayed_from" extensions:"x-nullable"`
}

// SessionRef names a session by its id.
type SessionRef struct {
	ID uuid.UUID `json:"id"`
}

// ETag is the entity tag of the event's current version.
func (e Event) ETag() string { return fmt.Sprintf(`"%s.%d"`, e.ID, e.Version) }

// Session is a stored session.
type Session struct {
	ID            uuid.UUID     `json:"id"`
	ApplicationID uuid.UUID     `json:"application_id"`
	CreatedAt     apitime.Time  `json:"created_at"`
	RegisteredAt  *apitime.Time `json:"registered_at" extensions:"x-nullable"`
	FirstEventAt  *apitime.Time `json:"first_event_at" extensions:"x-nullable"`
	LastEventAt   *apitime.Time `json:"last_event_at" extensions:"x-nullable"`
	EventCount    int64         `json:"event_count"`
}

// Error is a stored error record.
type Error struct {
	ID            uuid.UUID        `json:"id"`
	ApplicationID uuid.UUID        `json:"application_id"`
	SessionID     *uuid.UUID       `json:"session_id" extensions:"x-nullable"`
	Stage         string           `json:"stage" example:"validator"`
	Reasons       event.Reasons    `json:"reasons"`
	Payload       contract.Payload `json:"payload"`
	ReceivedAt    apitime.Time     `json:"received_at"`
	DetectedAt    apitime.Time     `json:"detected_at"`
	// Category and Name are the payload's, when it is a JSON object and
	// they are strings (at most 255 characters kept); null otherwise.
	Category *string `json:"category" extensions:"x-nullable" example:"page interaction"`
	Name     *string `json:"name" extensions:"x-nullable" example:"pageview"`
	// SchemaVersion is the version of the type's JSON Schema that applied;
	// null when none did.
	SchemaVersion *int `json:"schema_version" extensions:"x-nullable" example:"2"`
	// ReplayOf is, for a record a replay produced (the replayed event
	// failed again), the error record that was replayed.
	ReplayOf *uuid.UUID `json:"replay_of" extensions:"x-nullable"`
	// ReplayAttempts counts the replays of this record that were started.
	ReplayAttempts int `json:"replay_attempts" example:"1"`
	// ReplayedAs is the event id the latest replay published, and
	// ReplayedAt when Kafka acknowledged it; null until replayed.
	ReplayedAs *uuid.UUID    `json:"replayed_as" extensions:"x-nullable"`
	ReplayedAt *apitime.Time `json:"replayed_at" extensions:"x-nullable"`
}

// Scope limits what a caller sees: one application, or all of them.
type Scope struct {
	AppID uuid.UUID // uuid.Nil: every application (admin)
}

// Actor is who makes a change: the API key used and its application. It is
// recorded in the audit of every change.
type Actor struct {
	KeyID uuid.UUID
	AppID uuid.UUID
}

// Order of a list.
type Order string

// Orders.
const (
	Newest Order = "-timestamp" // newest first (default)
	Oldest Order = "timestamp"
)

// EventFilter filters events.
type EventFilter struct {
	Session *uuid.UUID
	// Application narrows an admin's view to one application; for a caller
	// scoped to one application, another application matches nothing.
	Application *uuid.UUID
	Category    string
	Name        string
	From, To    *time.Time // inclusive bounds on timestamp
	Order       Order
}

// SessionFilter filters sessions.
type SessionFilter struct {
	Application *uuid.UUID
	From, To    *time.Time // inclusive bounds on created_at
}

// ErrorFilter filters error records.
type ErrorFilter struct {
	Application *uuid.UUID
	Session     *uuid.UUID
	Reason      string
	Stage       string
	From, To    *time.Time // inclusive bounds on detected_at
	Category    string     // the payload's category, exact
	Name        string     // the payload's name, exact
	Replayed    *bool      // whether the record was replayed (replayed_as set); nil: either
}

// Errors of the query domain and its storage.
var (
	ErrNotFound         = errors.New("not found")
	ErrPrecondition     = errors.New("the event changed since it was read")
	ErrSessionImmutable = errors.New("an event's session cannot be changed")
	ErrBadRange         = errors.New("invalid range")
	ErrTooManyBuckets   = errors.New("too many buckets")
	ErrTooManyStats     = errors.New("too many counts")
	ErrNotPublished     = errors.New("the erasure could not be published")
)

// Bucket is the width of a stats time bucket, in UTC.
type Bucket string

// Buckets.
const (
	Minute Bucket = "minute"
	Hour   Bucket = "hour"
	Day    Bucket = "day"
)

// Duration is the bucket's width; 0 for an unknown bucket.
func (b Bucket) Duration() time.Duration {
	switch b {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	return 0
}

// Stats limits: a request spans at most MaxBuckets buckets and answers at
// most MaxStats counts.
const (
	MaxBuckets = 2000
	MaxStats   = 20000
)

// StatsFilter asks for event counts per time bucket over [From, To], both
// inclusive, optionally per category and/or name.
type StatsFilter struct {
	Bucket     Bucket
	From, To   time.Time
	ByCategory bool
	ByName     bool
	// Application narrows an admin's view to one application, as in
	// EventFilter.
	Application *uuid.UUID
	Session     *uuid.UUID
	Category    string
	Name        string
}

// Stat is the number of events in one time bucket (and group).
type Stat struct {
	Bucket apitime.Time `json:"bucket"` // the bucket's start, UTC
	// Category and Name are set when the counts are grouped by them.
	Category *string `json:"category,omitempty" example:"page interaction"`
	Name     *string `json:"name,omitempty" example:"pageview"`
	Count    int64   `json:"count" example:"42"`
}

// Audit actions.
const (
	ActionReplace = "replace" // PUT
	ActionPatch   = "patch"   // PATCH
	ActionDelete  = "delete"  // DELETE
)

// AuditEntry is one change made to an event through the API.
type AuditEntry struct {
	ID        uuid.UUID `json:"id"`
	EventID   uuid.UUID `json:"event_id"`
	SessionID uuid.UUID `json:"session_id"`
	Action    string    `json:"action" enums:"replace,patch,delete" example:"patch"`
	// ActorKeyID and ActorAppID are the API key that made the change and
	// its application.
	ActorKeyID uuid.UUID    `json:"actor_key_id"`
	ActorAppID uuid.UUID    `json:"actor_app_id"`
	At         apitime.Time `json:"at"`
	Before     *Event       `json:"before"`                        // the event before the change
	After      *Event       `json:"after" extensions:"x-nullable"` // after it; null for a deletion
}

// Erasure reports what erasing a session removed.
type Erasure struct {
	SessionID uuid.UUID `json:"session_id"`
	// TombstoneID is the id of the tombstone published on the erasures
	// topic.
	TombstoneID  uuid.UUID `json:"tombstone_id"`
	Session      bool      `json:"session"` // whether a session row existed
	Events       int64     `json:"events" example:"42"`
	Errors       int64     `json:"errors" example:"1"`
	AuditEntries int64     `json:"audit_entries" example:"2"`
}

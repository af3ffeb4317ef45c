// Package query is the query API's domain and storage: events, sessions and
// error records read with filters and keyset pagination, and events changed
// under the same validation rules as ingestion, without lost updates.
package query

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

// Event is a stored event.
type Event struct {
	ID            uuid.UUID       `json:"id"`
	ApplicationID uuid.UUID       `json:"application_id"`
	SessionID     uuid.UUID       `json:"session_id"`
	Category      string          `json:"category" example:"page interaction"`
	Name          string          `json:"name" example:"pageview"`
	Data          json.RawMessage `json:"data" swaggertype:"object"`
	Timestamp     time.Time       `json:"timestamp"`
	// ClientTimestamp is the timestamp as the client's clock said, when it
	// sent sent_at and so Timestamp was corrected for clock skew.
	ClientTimestamp *time.Time `json:"client_timestamp"`
	ReceivedAt      time.Time  `json:"received_at"`
	Version         int        `json:"version" example:"1"`
	UpdatedAt       *time.Time `json:"updated_at"`
}

// ETag is the entity tag of the event's current version.
func (e Event) ETag() string { return fmt.Sprintf(`"%s.%d"`, e.ID, e.Version) }

// Session is a stored session.
type Session struct {
	ID            uuid.UUID  `json:"id"`
	ApplicationID uuid.UUID  `json:"application_id"`
	CreatedAt     time.Time  `json:"created_at"`
	RegisteredAt  *time.Time `json:"registered_at"`
	FirstEventAt  *time.Time `json:"first_event_at"`
	LastEventAt   *time.Time `json:"last_event_at"`
	EventCount    int64      `json:"event_count"`
}

// Error is a stored error record.
type Error struct {
	ID            uuid.UUID        `json:"id"`
	ApplicationID uuid.UUID        `json:"application_id"`
	SessionID     *uuid.UUID       `json:"session_id"`
	Stage         string           `json:"stage" example:"validator"`
	Reasons       event.Reasons    `json:"reasons"`
	Payload       contract.Payload `json:"payload"`
	ReceivedAt    time.Time        `json:"received_at"`
	DetectedAt    time.Time        `json:"detected_at"`
}

// Scope limits what a caller sees: one application, or all of them.
type Scope struct {
	AppID uuid.UUID // uuid.Nil: every application (admin)
}

// Order of a list.
type Order string

// Orders.
const (
	Newest Order = "-timestamp" // newest first (default)
	Oldest Order = "timestamp"
)

// Page asks for one page of a list.
type Page struct {
	Limit  int
	Cursor string // from a previous page's Next; "" for the first page
}

// Pagination limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// EventFilter filters events.
type EventFilter struct {
	Session     *uuid.UUID
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
}

// Errors returned by the store.
var (
	ErrNotFound         = errors.New("not found")
	ErrBadCursor        = errors.New("invalid cursor")
	ErrPrecondition     = errors.New("the event changed since it was read")
	ErrSessionImmutable = errors.New("an event's session cannot be changed")
)

// cursor is the position after the last row of a page, bound to the list
// order it was made for.
type cursor struct {
	T     time.Time `json:"t"`
	ID    uuid.UUID `json:"id"`
	Order Order     `json:"o"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c) // cannot fail: plain fields
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, order Order) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrBadCursor
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == uuid.Nil || c.Order != order {
		return nil, ErrBadCursor
	}
	return &c, nil
}

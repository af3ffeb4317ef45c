// Package ingest is the gateway's domain: it turns a request body into raw
// events stamped with an id and a receive time, publishes them keyed by
// session id, and records what it can already tell is broken as error
// records. It knows nothing of HTTP.
package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

// Publisher writes messages durably; it returns nil only after the broker
// acknowledged every message.
type Publisher interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// Status of one event in a receipt.
const (
	StatusAccepted = "accepted"
	StatusRejected = "rejected"
)

// Receipt tells a client what became of one event.
type Receipt struct {
	ID      uuid.UUID     `json:"id"`
	Status  string        `json:"status"`
	Reasons event.Reasons `json:"reasons,omitempty"`
}

// Limits bound what one request may carry.
type Limits struct {
	MaxEvents int // events per batch
}

// Errors returned by Service.
var (
	// ErrUnavailable means the broker did not acknowledge in time; nothing
	// may be reported as accepted.
	ErrUnavailable = errors.New("event log unavailable")
	// ErrTooManyEvents means a batch is over Limits.MaxEvents.
	ErrTooManyEvents = errors.New("too many events in one batch")
	// ErrEmptyBatch means a batch held no events.
	ErrEmptyBatch = errors.New("empty batch")
)

// RejectedError is a whole request rejected for Reason; an error record was
// published for it, so it shows up in the errors the team monitors.
type RejectedError struct {
	ID     uuid.UUID
	Reason event.Reason
}

func (e *RejectedError) Error() string { return string(e.Reason.Code) + ": " + e.Reason.Message }

// Service ingests events.
type Service struct {
	pub    Publisher
	topics contract.Topics
	limits Limits
	now    func() time.Time
}

// NewService returns a Service publishing to topics through pub.
func NewService(pub Publisher, topics contract.Topics, limits Limits) (*Service, error) {
	if pub == nil {
		return nil, errors.New("ingest: nil publisher")
	}
	if limits.MaxEvents <= 0 {
		return nil, errors.New("ingest: MaxEvents must be positive")
	}
	return &Service{pub: pub, topics: topics, limits: limits, now: time.Now}, nil
}

// Result is the outcome of an accepted request.
type Result struct {
	Batch    bool // the body was a JSON array
	Receipts []Receipt
}

// Ingest publishes the events in body, one JSON object or an array of them,
// for application app. It returns once every accepted event and every error
// record is acknowledged by the broker.
func (s *Service) Ingest(ctx context.Context, app uuid.UUID, body []byte) (Result, error) {
	received := event.Canonical(s.now())
	trimmed := bytes.TrimSpace(body)
	if !json.Valid(trimmed) {
		return Result{}, s.reject(ctx, app, nil, body, received, event.Reason{Code: event.CodeInvalidJSON, Message: "body is not valid JSON"})
	}
	switch trimmed[0] {
	case '{':
		r, msg, err := s.prepare(app, trimmed, received)
		if err != nil {
			return Result{}, err
		}
		if r.Status == StatusRejected {
			return Result{}, s.reject(ctx, app, nil, trimmed, received, r.Reasons[0])
		}
		return Result{Receipts: []Receipt{r}}, s.publish(ctx, msg)
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return Result{}, fmt.Errorf("ingest: decode batch: %w", err) // unreachable: validated above
		}
		if len(items) == 0 {
			return Result{}, ErrEmptyBatch
		}
		if len(items) > s.limits.MaxEvents {
			return Result{}, fmt.Errorf("%w: %d > %d", ErrTooManyEvents, len(items), s.limits.MaxEvents)
		}
		res := Result{Batch: true, Receipts: make([]Receipt, len(items))}
		msgs := make([]contract.Message, len(items))
		for i, item := range items {
			r, msg, err := s.prepare(app, item, received)
			if err != nil {
				return Result{}, err
			}
			res.Receipts[i], msgs[i] = r, msg
		}
		return res, s.publish(ctx, msgs...)
	default:
		return Result{}, s.reject(ctx, app, nil, trimmed, received, event.Reason{Code: event.CodeNotObject, Message: "body must be an event object or an array of them"})
	}
}

// prepare builds the message for one event document: a raw event, or an
// error record when the gateway can already tell it is not an object.
func (s *Service) prepare(app uuid.UUID, doc json.RawMessage, received time.Time) (Receipt, contract.Message, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Receipt{}, contract.Message{}, fmt.Errorf("ingest: new id: %w", err)
	}
	obj, reason := event.DecodeObject(doc)
	if reason != nil {
		msg, err := s.errorRecord(id, app, nil, doc, received, *reason)
		return Receipt{ID: id, Status: StatusRejected, Reasons: event.Reasons{*reason}}, msg, err
	}
	msg, err := contract.Encode(s.topics.Raw, sessionKey(obj), &contract.RawEvent{EventID: id, AppID: app, ReceivedAt: received, Payload: doc})
	return Receipt{ID: id, Status: StatusAccepted}, msg, err
}

// sessionKey is the partition key for an event: its session id in canonical
// form, so every spelling of one session lands on one partition; the raw
// text when it is not a UUID (the validator will reject it).
func sessionKey(obj map[string]json.RawMessage) string {
	ref, _, _ := event.SessionRef(obj)
	if id, err := uuid.Parse(ref); err == nil {
		return id.String()
	}
	return ref
}

// reject publishes an error record for a whole request and returns the
// RejectedError to answer with.
func (s *Service) reject(ctx context.Context, app uuid.UUID, session *uuid.UUID, body []byte, received time.Time, reason event.Reason) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("ingest: new id: %w", err)
	}
	msg, err := s.errorRecord(id, app, session, body, received, reason)
	if err != nil {
		return err
	}
	if err := s.publish(ctx, msg); err != nil {
		return err
	}
	return &RejectedError{ID: id, Reason: reason}
}

func (s *Service) errorRecord(id, app uuid.UUID, session *uuid.UUID, body []byte, received time.Time, reason event.Reason) (contract.Message, error) {
	key := ""
	if session != nil {
		key = session.String()
	}
	return contract.Encode(s.topics.Errors, key, &contract.Error{
		ID: id, AppID: app, SessionID: session, Stage: contract.StageGateway,
		Reasons: event.Reasons{reason}, Payload: contract.NewPayload(body),
		ReceivedAt: received, DetectedAt: event.Canonical(s.now()),
	})
}

func (s *Service) publish(ctx context.Context, msgs ...contract.Message) error {
	if err := s.pub.Publish(ctx, msgs...); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// RegisterSession announces a session for app. id is the application's own
// id, or uuid.Nil to have one generated.
func (s *Service) RegisterSession(ctx context.Context, app, id uuid.UUID) (uuid.UUID, error) {
	if id == uuid.Nil {
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return uuid.Nil, fmt.Errorf("ingest: new id: %w", err)
		}
	}
	msg, err := contract.Encode(s.topics.Sessions, id.String(), &contract.SessionRegistered{ID: id, AppID: app, RegisteredAt: event.Canonical(s.now())})
	if err != nil {
		return uuid.Nil, err
	}
	return id, s.publish(ctx, msg)
}

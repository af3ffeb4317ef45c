// Package ingest is the gateway's domain: it turns request bodies (one
// event, a JSON array, or an NDJSON stream) into raw events stamped with an
// id and a receive time, publishes them keyed by session id, and records
// what it can already tell is broken as error records. It knows nothing of
// HTTP.
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
	"github.com/the-eye/eye/pkg/jsonx"
)

// Publisher writes messages durably; it returns nil only after the broker
// acknowledged every message.
type Publisher interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// Sessions registers sessions durably.
type Sessions interface {
	// Register records session id for app; ErrSessionConflict when the id
	// belongs to another application. Registering twice is not an error.
	Register(ctx context.Context, app, id uuid.UUID, at time.Time) error
}

// Admit is asked before events are published, with how many; a non-nil
// error (e.g. a *RateLimitedError) stops the request.
type Admit func(n int) error

// Status of one event in a receipt.
const (
	StatusAccepted = "accepted"
	StatusRejected = "rejected"
)

// Receipt tells a client what became of one event.
type Receipt struct {
	ID      uuid.UUID     `json:"id"`
	Status  string        `json:"status" enums:"accepted,rejected"`
	Reasons event.Reasons `json:"reasons,omitempty"`
}

// Limits bound what one request may carry.
type Limits struct {
	MaxEvents       int // events per JSON array
	MaxStreamEvents int // events per NDJSON stream
	MaxEventBytes   int // bytes per event
	MaxDepth        int // JSON nesting depth per event
}

// Errors returned by Service.
var (
	// ErrUnavailable means the broker (or the session store) did not
	// acknowledge in time; nothing may be reported as accepted.
	ErrUnavailable = errors.New("event log unavailable")
	// ErrTooManyEvents means a request is over its event-count limit.
	ErrTooManyEvents = errors.New("too many events in one request")
	// ErrEmptyBatch means a batch held no events.
	ErrEmptyBatch = errors.New("empty batch")
	// ErrSessionConflict means a session id belongs to another application.
	ErrSessionConflict = errors.New("this session id belongs to another application")
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
	pub      Publisher
	sessions Sessions
	topics   contract.Topics
	limits   Limits
	now      func() time.Time
}

// NewService returns a Service publishing to topics through pub.
func NewService(pub Publisher, sessions Sessions, topics contract.Topics, limits Limits) (*Service, error) {
	if pub == nil || sessions == nil {
		return nil, errors.New("ingest: nil publisher or session store")
	}
	if limits.MaxEvents <= 0 || limits.MaxStreamEvents <= 0 || limits.MaxEventBytes <= 0 || limits.MaxDepth <= 0 {
		return nil, errors.New("ingest: every limit must be positive")
	}
	return &Service{pub: pub, sessions: sessions, topics: topics, limits: limits, now: time.Now}, nil
}

// Result is the outcome of an accepted JSON request.
type Result struct {
	Batch    bool // the body was a JSON array
	Receipts []Receipt
}

// Ingest publishes the events in body, one JSON object or an array of them,
// for application app. It returns once every accepted event and every error
// record is acknowledged by the broker.
func (s *Service) Ingest(ctx context.Context, app uuid.UUID, body []byte, admit Admit) (Result, error) {
	received := event.Canonical(s.now())
	trimmed := bytes.TrimSpace(body)
	invalid := event.Reason{Code: event.CodeInvalidJSON, Message: "body is not valid JSON"}
	// An array is validated by decoding it (below); anything else first,
	// so that invalid JSON is reported as such before any per-event check.
	if len(trimmed) == 0 || trimmed[0] != '[' && !jsonx.Valid(trimmed) {
		return Result{}, s.reject(ctx, app, body, received, invalid)
	}
	switch trimmed[0] {
	case '{':
		r, msg, err := s.prepare(app, trimmed, received)
		if err != nil {
			return Result{}, err
		}
		if r.Status == StatusRejected {
			return Result{}, s.reject(ctx, app, trimmed, received, r.Reasons[0])
		}
		if err := admit(1); err != nil {
			return Result{}, err
		}
		return Result{Receipts: []Receipt{r}}, s.publish(ctx, msg)
	case '[':
		var items []json.RawMessage
		if err := jsonx.Unmarshal(trimmed, &items); err != nil {
			return Result{}, s.reject(ctx, app, body, received, invalid)
		}
		if len(items) == 0 {
			return Result{}, ErrEmptyBatch
		}
		if len(items) > s.limits.MaxEvents {
			return Result{}, fmt.Errorf("%w: %d events, the limit per array is %d", ErrTooManyEvents, len(items), s.limits.MaxEvents)
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
		if err := admit(len(items)); err != nil {
			return Result{}, err
		}
		return res, s.publish(ctx, msgs...)
	default:
		return Result{}, s.reject(ctx, app, trimmed, received, event.Reason{Code: event.CodeNotObject, Message: "body must be an event object or an array of them"})
	}
}

// prepare builds the message for one event document: a raw event, or an
// error record for what the gateway can already tell is wrong (too large,
// too deep, not an object, no session id, a client id that is not a UUID).
func (s *Service) prepare(app uuid.UUID, doc []byte, received time.Time) (Receipt, contract.Message, error) {
	obj, id, reason := s.check(doc)
	if id == uuid.Nil {
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return Receipt{}, contract.Message{}, fmt.Errorf("ingest: new id: %w", err)
		}
	}
	if reason != nil {
		if len(doc) > s.limits.MaxEventBytes {
			doc = doc[:s.limits.MaxEventBytes] // keep what identifies it, not megabytes
		}
		msg, err := s.errorRecord(id, app, doc, received, *reason)
		return Receipt{ID: id, Status: StatusRejected, Reasons: event.Reasons{*reason}}, msg, err
	}
	msg, err := contract.Encode(s.topics.Raw, sessionKey(obj), &contract.RawEvent{EventID: id, AppID: app, ReceivedAt: received, Payload: contract.NewPayload(doc)})
	return Receipt{ID: id, Status: StatusAccepted}, msg, err
}

// check applies the gateway's own rules to one event document. It returns
// the client's id when the document carries a valid one.
func (s *Service) check(doc []byte) (map[string]json.RawMessage, uuid.UUID, *event.Reason) {
	if len(doc) > s.limits.MaxEventBytes {
		return nil, uuid.Nil, &event.Reason{Code: event.CodeTooLarge, Message: fmt.Sprintf("event is %d bytes, the limit is %d", len(doc), s.limits.MaxEventBytes)}
	}
	if event.DepthExceeds(doc, s.limits.MaxDepth) {
		return nil, uuid.Nil, &event.Reason{Code: event.CodeTooDeep, Message: fmt.Sprintf("event nests deeper than %d levels", s.limits.MaxDepth)}
	}
	obj, reason := event.DecodeObject(doc)
	if reason != nil {
		return nil, uuid.Nil, reason
	}
	var id uuid.UUID
	if raw, ok := obj["id"]; ok && string(raw) != "null" {
		var text string
		parsed, err := uuid.Parse(stringOf(raw, &text))
		if err != nil || len(text) != 36 || parsed == uuid.Nil {
			return nil, uuid.Nil, &event.Reason{Code: event.CodeInvalidID, Field: "/id", Message: "id must be a UUID (e.g. a UUIDv7 the client generates)"}
		}
		id = parsed
	}
	if _, _, ok := event.SessionRef(obj); !ok {
		return nil, id, &event.Reason{Code: event.CodeMissingField, Field: "/session_id", Message: "session_id (or session.id) is required"}
	}
	return obj, id, nil
}

func stringOf(raw json.RawMessage, dst *string) string {
	if err := jsonx.Unmarshal(raw, dst); err != nil {
		*dst = ""
	}
	return *dst
}

// sessionKey is the partition key for an event: its session id in canonical
// form, so every spelling of one session lands on one partition; the raw
// text when it is not a UUID (the validator will reject it).
func sessionKey(obj map[string]json.RawMessage) string {
	ref, _, _ := event.SessionRef(obj)
	if id, ok := event.ParseSessionID(ref); ok {
		return id.String()
	}
	return ref
}

// reject publishes an error record for a whole request and returns the
// RejectedError to answer with.
func (s *Service) reject(ctx context.Context, app uuid.UUID, body []byte, received time.Time, reason event.Reason) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("ingest: new id: %w", err)
	}
	if len(body) > s.limits.MaxEventBytes {
		body = body[:s.limits.MaxEventBytes]
	}
	msg, err := s.errorRecord(id, app, body, received, reason)
	if err != nil {
		return err
	}
	if err := s.publish(ctx, msg); err != nil {
		return err
	}
	return &RejectedError{ID: id, Reason: reason}
}

func (s *Service) errorRecord(id, app uuid.UUID, body []byte, received time.Time, reason event.Reason) (contract.Message, error) {
	return contract.Encode(s.topics.Errors, "", &contract.Error{
		ID: id, AppID: app, Stage: contract.StageGateway,
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

// RegisterSession records a session for app. id is the application's own
// id, or uuid.Nil to have one generated. It returns once the registration
// is durable, so events sent afterwards always find it.
func (s *Service) RegisterSession(ctx context.Context, app, id uuid.UUID) (uuid.UUID, error) {
	if id == uuid.Nil {
		var err error
		if id, err = uuid.NewV7(); err != nil {
			return uuid.Nil, fmt.Errorf("ingest: new id: %w", err)
		}
	}
	err := s.sessions.Register(ctx, app, id, event.Canonical(s.now()))
	switch {
	case errors.Is(err, ErrSessionConflict):
		return uuid.Nil, err
	case err != nil:
		return uuid.Nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return id, nil
}

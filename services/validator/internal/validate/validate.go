// Package validate is the validator's domain: it reads raw events, applies
// every rule, and turns each into either a canonical event or a typed error
// record, keeping the session key so a session's order survives.
package validate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/schema"
)

// Publisher writes messages durably.
type Publisher interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// Relay validates raw events and publishes the outcome.
type Relay struct {
	rules  event.Rules
	topics contract.Topics
	pub    Publisher
	now    func() time.Time

	schemas *schema.Registry // nil: no per-type schemas
	strict  StrictTypes      // nil: no application has strict types
}

// StrictTypes reports whether application app accepts only event types
// that have a schema. An error fails the batch, which is retried.
type StrictTypes func(ctx context.Context, app uuid.UUID) (bool, error)

// Option configures a Relay.
type Option func(*Relay)

// WithSchemas checks every event against the schema of its type in reg
// (which a schema.Follower keeps current); strict tells which applications
// reject types without a schema (nil: none does).
func WithSchemas(reg *schema.Registry, strict StrictTypes) Option {
	return func(r *Relay) { r.schemas, r.strict = reg, strict }
}

// NewRelay returns a Relay applying rules and publishing through pub.
func NewRelay(rules event.Rules, topics contract.Topics, pub Publisher, opts ...Option) (*Relay, error) {
	if pub == nil {
		return nil, errors.New("validate: nil publisher")
	}
	r := &Relay{rules: rules, topics: topics, pub: pub, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Handle validates a batch of raw-topic messages and publishes one outcome
// per message, in order; it returns only after the broker acknowledged them
// all, so the caller may then commit the input offsets.
func (r *Relay) Handle(ctx context.Context, batch []contract.Message) error {
	out := make([]contract.Message, 0, len(batch))
	for _, m := range batch {
		o, err := r.process(ctx, m)
		if err != nil {
			return err
		}
		out = append(out, o)
		if o.Headers[contract.HeaderDLQReason] != "" {
			// A record that cannot be decoded also goes, exactly as it was,
			// to the dead-letter topic with the reason in headers.
			out = append(out, contract.DeadLetter(r.topics.DeadLetter, m, contract.StageValidator, errors.New(o.Headers[contract.HeaderDLQReason])))
			delete(o.Headers, contract.HeaderDLQReason)
		}
	}
	return r.pub.Publish(ctx, out...)
}

// Process turns one raw-topic message into its outcome message.
func (r *Relay) Process(m contract.Message) (contract.Message, error) {
	o, err := r.process(context.Background(), m)
	delete(o.Headers, contract.HeaderDLQReason)
	return o, err
}

// decodeRaw decodes a raw-topic record, payload included.
func decodeRaw(m contract.Message) (contract.RawEvent, []byte, error) {
	var raw contract.RawEvent
	if err := contract.Decode(m.Value, &raw); err != nil {
		return raw, nil, err
	}
	payload, err := raw.Payload.Bytes()
	if err != nil {
		return raw, nil, fmt.Errorf("payload: %w", err)
	}
	return raw, payload, nil
}

func (r *Relay) process(ctx context.Context, m contract.Message) (contract.Message, error) {
	now := r.now()
	raw, payload, err := decodeRaw(m)
	if err != nil {
		return r.undecodable(m, now, err)
	}
	f, reasons := r.rules.ValidateReceived(payload, raw.ReceivedAt, now)
	more, version, err := r.checkSchema(ctx, raw.AppID, f.Object)
	if err != nil {
		return contract.Message{}, err
	}
	reasons = append(reasons, more...)
	if len(reasons) > 0 {
		rec := &contract.Error{
			ID: contract.ErrorID(raw.EventID, raw.ReplayOf), AppID: raw.AppID, Stage: contract.StageValidator, Reasons: reasons,
			Payload: raw.Payload, ReceivedAt: raw.ReceivedAt, DetectedAt: event.Canonical(now),
			SchemaVersion: version, ReplayOf: raw.ReplayOf,
		}
		if f.Object != nil {
			if ref, _, ok := event.SessionRef(f.Object); ok {
				if id, ok := event.ParseSessionID(ref); ok {
					rec.SessionID = &id
				}
			}
		}
		return contract.Encode(r.topics.Errors, string(m.Key), rec)
	}
	return contract.Encode(r.topics.Events, f.SessionID.String(), &contract.Event{
		ID: raw.EventID, AppID: raw.AppID, SessionID: f.SessionID, Category: f.Category, Name: f.Name,
		Data: f.Data, Timestamp: f.Timestamp, ClientTimestamp: f.ClientTimestamp, ReceivedAt: raw.ReceivedAt,
		SchemaVersion: version, ReplayOf: raw.ReplayOf,
	})
}

// checkSchema applies the schema of the event's type: the reasons it
// fails it for (with unknown_event_type when the type has none and the
// application has strict types) and the version that applied (0: none).
// An error means the application's settings could not be read.
// obj is the event decoded (nil when it is not a JSON object: the rules
// reported it).
func (r *Relay) checkSchema(ctx context.Context, app uuid.UUID, obj map[string]json.RawMessage) (event.Reasons, int, error) {
	if r.schemas == nil || obj == nil {
		return nil, 0, nil
	}
	res := r.schemas.Check(obj)
	version := 0
	if res.Schema != nil {
		version = res.Schema.Version
	}
	if res.Untyped && r.strict != nil {
		strict, err := r.strict(ctx, app)
		if err != nil {
			return nil, 0, fmt.Errorf("validate: strict types of application %s: %w", app, err)
		}
		if strict {
			res.Reasons = append(res.Reasons, schema.UnknownType(obj))
		}
	}
	return res.Reasons, version, nil
}

// undecodable records a message that is not a raw event the gateway wrote:
// the bytes are kept and explained, and the partition moves on. The id is
// derived from the bytes, so a redelivery is stored once.
// The returned message carries the reason in a HeaderDLQReason header,
// which Handle turns into the dead-letter copy and removes.
func (r *Relay) undecodable(m contract.Message, now time.Time, err error) (contract.Message, error) {
	o, encErr := contract.Encode(r.topics.Errors, string(m.Key), &contract.Error{
		ID: uuid.NewSHA1(uuid.NameSpaceOID, m.Value), Stage: contract.StageValidator,
		Reasons: event.Reasons{{Code: event.CodeInvalidEnvelope, Message: err.Error()}},
		Payload: contract.NewPayload(m.Value), ReceivedAt: event.Canonical(now), DetectedAt: event.Canonical(now),
	})
	if encErr == nil {
		o.Headers[contract.HeaderDLQReason] = err.Error()
	}
	return o, encErr
}

// Package validate is the validator's domain: it applies every rule to a
// raw event, and the JSON Schema of its type, and turns it into either a
// canonical event or a typed error record, keeping the replay lineage. It
// knows nothing of Kafka or SQL: the topic handler (internal/kafkaapi)
// decodes its input and publishes its outcome, and an application's
// strict-types setting comes through the StrictTypes it is given
// (internal/postgres answers it).
package validate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/schema"
)

// Validator validates raw events.
type Validator struct {
	rules event.Rules
	now   func() time.Time

	schemas *schema.Registry // nil: no per-type schemas
	strict  StrictTypes      // nil: no application has strict types
}

// StrictTypes reports whether application app accepts only event types
// that have a schema (an unknown application does not). An error fails
// the batch, which is retried.
type StrictTypes func(ctx context.Context, app uuid.UUID) (bool, error)

// Option configures a Validator.
type Option func(*Validator)

// WithSchemas checks every event against the schema of its type in reg
// (which a schema.Follower keeps current); strict tells which applications
// reject types without a schema (nil: none does).
func WithSchemas(reg *schema.Registry, strict StrictTypes) Option {
	return func(v *Validator) { v.schemas, v.strict = reg, strict }
}

// New returns a Validator applying rules.
func New(rules event.Rules, opts ...Option) *Validator {
	v := &Validator{rules: rules, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	return v
}

// Outcome is what a raw event becomes: exactly one of Event (it is valid)
// and Error (why it is not).
type Outcome struct {
	Event *contract.Event
	Error *contract.Error
}

// Validate turns raw, whose payload is payload (raw.Payload decoded), into
// its outcome. An error means the application's settings could not be
// read; the event is not judged.
func (v *Validator) Validate(ctx context.Context, raw contract.RawEvent, payload []byte) (Outcome, error) {
	now := v.now()
	f, reasons := v.rules.ValidateReceived(payload, raw.ReceivedAt, now)
	more, version, err := v.checkSchema(ctx, raw.AppID, f.Object)
	if err != nil {
		return Outcome{}, err
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
		return Outcome{Error: rec}, nil
	}
	return Outcome{Event: &contract.Event{
		ID: raw.EventID, AppID: raw.AppID, SessionID: f.SessionID, Category: f.Category, Name: f.Name,
		Data: f.Data, Timestamp: f.Timestamp, ClientTimestamp: f.ClientTimestamp, ReceivedAt: raw.ReceivedAt,
		SchemaVersion: version, ReplayOf: raw.ReplayOf,
	}}, nil
}

// checkSchema applies the schema of the event's type: the reasons it
// fails it for (with unknown_event_type when the type has none and the
// application has strict types) and the version that applied (0: none).
// An error means the application's settings could not be read.
// obj is the event decoded (nil when it is not a JSON object: the rules
// reported it).
func (v *Validator) checkSchema(ctx context.Context, app uuid.UUID, obj map[string]json.RawMessage) (event.Reasons, int, error) {
	if v.schemas == nil || obj == nil {
		return nil, 0, nil
	}
	res := v.schemas.Check(obj)
	version := 0
	if res.Schema != nil {
		version = res.Schema.Version
	}
	if res.Untyped && v.strict != nil {
		strict, err := v.strict(ctx, app)
		if err != nil {
			return nil, 0, fmt.Errorf("validate: strict types of application %s: %w", app, err)
		}
		if strict {
			res.Reasons = append(res.Reasons, schema.UnknownType(obj))
		}
	}
	return res.Reasons, version, nil
}

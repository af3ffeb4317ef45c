// Package validate is the validator's domain: it reads raw events, applies
// every rule, and turns each into either a canonical event or a typed error
// record, keeping the session key so a session's order survives.
package validate

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
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
}

// NewRelay returns a Relay applying rules and publishing through pub.
func NewRelay(rules event.Rules, topics contract.Topics, pub Publisher) (*Relay, error) {
	if pub == nil {
		return nil, errors.New("validate: nil publisher")
	}
	return &Relay{rules: rules, topics: topics, pub: pub, now: time.Now}, nil
}

// Handle validates a batch of raw-topic messages and publishes one outcome
// per message, in order; it returns only after the broker acknowledged them
// all, so the caller may then commit the input offsets.
func (r *Relay) Handle(ctx context.Context, batch []contract.Message) error {
	out := make([]contract.Message, 0, len(batch))
	for _, m := range batch {
		o, err := r.Process(m)
		if err != nil {
			return err
		}
		out = append(out, o)
	}
	return r.pub.Publish(ctx, out...)
}

// Process turns one raw-topic message into its outcome message.
func (r *Relay) Process(m contract.Message) (contract.Message, error) {
	now := r.now()
	var raw contract.RawEvent
	if err := contract.Decode(m.Value, &raw); err != nil {
		// Not something the gateway wrote: keep the bytes, explain, move on.
		return contract.Encode(r.topics.Errors, string(m.Key), &contract.Error{
			ID: uuid.NewSHA1(uuid.NameSpaceOID, m.Value), Stage: contract.StageValidator,
			Reasons: event.Reasons{{Code: event.CodeInvalidEnvelope, Message: err.Error()}},
			Payload: contract.NewPayload(m.Value), ReceivedAt: event.Canonical(now), DetectedAt: event.Canonical(now),
		})
	}
	f, reasons := r.rules.Validate(raw.Payload, now)
	if len(reasons) > 0 {
		rec := &contract.Error{
			ID: raw.EventID, AppID: raw.AppID, Stage: contract.StageValidator, Reasons: reasons,
			Payload: contract.NewPayload(raw.Payload), ReceivedAt: raw.ReceivedAt, DetectedAt: event.Canonical(now),
		}
		if obj, reason := event.DecodeObject(raw.Payload); reason == nil {
			if ref, _, ok := event.SessionRef(obj); ok {
				if id, err := uuid.Parse(ref); err == nil {
					rec.SessionID = &id
				}
			}
		}
		return contract.Encode(r.topics.Errors, string(m.Key), rec)
	}
	return contract.Encode(r.topics.Events, f.SessionID.String(), &contract.Event{
		ID: raw.EventID, AppID: raw.AppID, SessionID: f.SessionID, Category: f.Category, Name: f.Name,
		Data: f.Data, Timestamp: f.Timestamp, ReceivedAt: raw.ReceivedAt,
	})
}

// Package kafkaapi is the validator's transport: the handler of the raw
// topic. It decodes each record, has the domain (internal/validate) judge
// it, and publishes the outcome, keeping the session key so a session's
// order survives: a valid event on the valid-events topic, an error record
// on the errors topic. A record that is not a raw event at all becomes an
// invalid_envelope error record and also goes, as it was, to the
// dead-letter topic.
package kafkaapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/validator/internal/validate"
)

// Publisher writes messages durably.
type Publisher interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// Handler handles batches of the raw topic.
type Handler struct {
	v      *validate.Validator
	topics contract.Topics
	pub    Publisher
	now    func() time.Time
}

// New returns a Handler judging with v and publishing to topics through
// pub.
func New(v *validate.Validator, topics contract.Topics, pub Publisher) (*Handler, error) {
	if v == nil || pub == nil {
		return nil, errors.New("kafkaapi: nil validator or publisher")
	}
	return &Handler{v: v, topics: topics, pub: pub, now: time.Now}, nil
}

// Handle validates a batch of raw-topic messages and publishes one outcome
// per message, in order; it returns only after the broker acknowledged them
// all, so the caller may then commit the input offsets.
func (h *Handler) Handle(ctx context.Context, batch []contract.Message) error {
	out := make([]contract.Message, 0, len(batch))
	for _, m := range batch {
		o, dead, err := h.process(ctx, m)
		if err != nil {
			return err
		}
		out = append(out, o)
		if dead != nil {
			out = append(out, *dead)
		}
	}
	return h.pub.Publish(ctx, out...)
}

// process turns one raw-topic message into its outcome message and, for a
// record that cannot be decoded, its dead letter.
func (h *Handler) process(ctx context.Context, m contract.Message) (contract.Message, *contract.Message, error) {
	raw, payload, err := decodeRaw(m)
	if err != nil {
		o, encErr := h.undecodable(m, err)
		dead := contract.DeadLetter(h.topics.DeadLetter, m, contract.StageValidator, err)
		return o, &dead, encErr
	}
	res, err := h.v.Validate(ctx, raw, payload)
	switch {
	case err != nil:
		return contract.Message{}, nil, err
	case res.Error != nil:
		o, err := contract.Encode(h.topics.Errors, string(m.Key), res.Error)
		return o, nil, err
	}
	o, err := contract.Encode(h.topics.Events, res.Event.SessionID.String(), res.Event)
	return o, nil, err
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

// undecodable records a message that is not a raw event the gateway wrote:
// the bytes are kept and explained, and the partition moves on. The id is
// derived from the bytes, so a redelivery is stored once.
func (h *Handler) undecodable(m contract.Message, err error) (contract.Message, error) {
	now := event.Canonical(h.now())
	return contract.Encode(h.topics.Errors, string(m.Key), &contract.Error{
		ID: uuid.NewSHA1(uuid.NameSpaceOID, m.Value), Stage: contract.StageValidator,
		Reasons: event.Reasons{{Code: event.CodeInvalidEnvelope, Message: err.Error()}},
		Payload: contract.NewPayload(m.Value), ReceivedAt: now, DetectedAt: now,
	})
}

// Package kafkaapi is the writer's transport: the handlers of the topics
// it consumes. They decode each batch's records, hand the envelopes to the
// domain (internal/persist), and publish what comes back: records that
// cannot even be decoded become invalid_envelope error records and also go
// to the dead-letter topic as they were; events the domain refuses become
// error records on the errors topic, like every other stage's, and are
// stored from there.
package kafkaapi

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/writer/internal/persist"
)

// Publisher writes messages durably.
type Publisher interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// Handlers handle batches of the valid-events and errors topics.
type Handlers struct {
	w          *persist.Writer
	pub        Publisher
	deadLetter string // topic for records that cannot be decoded
	errors     string // topic for the error records the writer makes of events
	now        func() time.Time
}

// New returns the handlers storing through w, publishing through pub the
// records they cannot decode (to the dead-letter topic) and the error
// records w makes of events (to the errors topic).
func New(w *persist.Writer, pub Publisher, topics contract.Topics) (*Handlers, error) {
	if w == nil || pub == nil || topics.DeadLetter == "" || topics.Errors == "" {
		return nil, errors.New("kafkaapi: missing writer, publisher, dead-letter or errors topic")
	}
	return &Handlers{w: w, pub: pub, deadLetter: topics.DeadLetter, errors: topics.Errors, now: time.Now}, nil
}

// Events handles a batch of the valid-events topic. The error records it
// makes are published (acknowledged by every in-sync replica) before the
// batch counts as handled.
func (h *Handlers) Events(ctx context.Context, batch []contract.Message) error {
	var (
		bad []contract.Error
		out []contract.Message // dead letters, then the error records
	)
	decoded, errs := decodeAll(batch)
	events := decoded[:0]
	for i, m := range batch {
		if err := errs[i]; err != nil {
			bad = append(bad, h.undecodable(m, err))
			out = append(out, contract.DeadLetter(h.deadLetter, m, contract.StageWriter, err))
			continue
		}
		events = append(events, decoded[i])
	}
	refused, err := h.w.Events(ctx, events)
	if err != nil {
		return err
	}
	for _, e := range append(bad, refused...) {
		m, err := contract.Encode(h.errors, sessionKey(e), &e)
		if err != nil {
			return fmt.Errorf("encode error record %s: %w", e.ID, err)
		}
		out = append(out, m)
	}
	return h.pub.Publish(ctx, out...)
}

// Errors handles a batch of the errors topic.
func (h *Handlers) Errors(ctx context.Context, batch []contract.Message) error {
	recs := make([]contract.Error, 0, len(batch))
	var dead []contract.Message
	for _, m := range batch {
		var e contract.Error
		if err := contract.Decode(m.Value, &e); err != nil {
			e = h.undecodable(m, err)
			dead = append(dead, contract.DeadLetter(h.deadLetter, m, contract.StageWriter, err))
		}
		recs = append(recs, e)
	}
	if err := h.pub.Publish(ctx, dead...); err != nil {
		return err
	}
	return h.w.Errors(ctx, recs)
}

// sessionKey is an error record's partition key: its session id, as the
// events of that session are keyed, or none when it has none.
func sessionKey(e contract.Error) string {
	if e.SessionID == nil {
		return ""
	}
	return e.SessionID.String()
}

// decodeParallelMin is the batch size from which decodeAll splits the work
// over every CPU: decoding is the writer's main CPU cost outside Postgres,
// and Postgres is idle while a batch decodes.
const decodeParallelMin = 1000

// decodeAll decodes every message of a batch as an event envelope; errs[i]
// is message i's decoding error.
func decodeAll(batch []contract.Message) (events []contract.Event, errs []error) {
	events, errs = make([]contract.Event, len(batch)), make([]error, len(batch))
	decode := func(from, to int) {
		for i := from; i < to; i++ {
			errs[i] = contract.Decode(batch[i].Value, &events[i])
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if len(batch) < decodeParallelMin || workers == 1 {
		decode(0, len(batch))
		return events, errs
	}
	var wg sync.WaitGroup
	per := (len(batch) + workers - 1) / workers
	for from := 0; from < len(batch); from += per {
		wg.Go(func() { decode(from, min(from+per, len(batch))) })
	}
	wg.Wait()
	return events, errs
}

// undecodable records a message that is not a valid envelope. Its id is
// derived from its bytes, so a redelivery is stored once.
func (h *Handlers) undecodable(m contract.Message, err error) contract.Error {
	now := event.Canonical(h.now())
	return contract.Error{
		ID: uuid.NewSHA1(uuid.NameSpaceOID, append([]byte(m.Topic+"\x00"), m.Value...)), Stage: contract.StageWriter,
		Reasons: event.Reasons{{Code: event.CodeInvalidEnvelope, Message: err.Error()}},
		Payload: contract.NewPayload(m.Value), ReceivedAt: now, DetectedAt: now,
	}
}

// Package sink maps consumed records to storage: events and error records.
// Records that can never be stored become error records (and, when they
// cannot even be decoded, also go to the dead-letter topic as they were),
// so no partition ever stalls on them and nothing is silently dropped.
// Error records made from the valid-events topic are published on the
// errors topic, like every other stage's, and stored from there.
package sink

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
	"github.com/the-eye/eye/services/writer/internal/store"
)

// Publisher writes messages durably.
type Publisher interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// Sink writes batches through a store.
type Sink struct {
	st         *store.Store
	pub        Publisher
	deadLetter string // topic for records that cannot be decoded
	errors     string // topic for the error records the writer makes of events
	now        func() time.Time
}

// New returns a Sink on st, publishing through pub the records it cannot
// decode (to the dead-letter topic) and the error records it makes of
// events (to the errors topic).
func New(st *store.Store, pub Publisher, topics contract.Topics) (*Sink, error) {
	if st == nil || pub == nil || topics.DeadLetter == "" || topics.Errors == "" {
		return nil, errors.New("sink: missing store, publisher, dead-letter or errors topic")
	}
	return &Sink{st: st, pub: pub, deadLetter: topics.DeadLetter, errors: topics.Errors, now: time.Now}, nil
}

// Events stores a batch from the valid-events topic. Events it cannot
// store become error records on the errors topic, published (acknowledged
// by every in-sync replica) before the batch counts as handled.
func (s *Sink) Events(ctx context.Context, batch []contract.Message) error {
	events := make([]event.Event, 0, len(batch))
	var (
		bad []contract.Error
		out []contract.Message // dead letters, then the error records
	)
	replays := map[uuid.UUID]*contract.Replay{} // events that come from a replay of an error record
	decoded, errs := decodeAll(batch)
	for i, m := range batch {
		e := &decoded[i]
		if err := errs[i]; err != nil {
			bad = append(bad, s.undecodable(m, err))
			out = append(out, contract.DeadLetter(s.deadLetter, m, contract.StageWriter, err))
			continue
		}
		if e.ReplayOf != nil {
			replays[e.ID] = e.ReplayOf
		}
		events = append(events, event.Event{
			ID: e.ID, AppID: e.AppID, SessionID: e.SessionID, Category: e.Category, Name: e.Name,
			Data: e.Data, Timestamp: e.Timestamp, ClientTimestamp: e.ClientTimestamp, ReceivedAt: e.ReceivedAt,
		})
	}
	events, err := s.dropErased(ctx, events)
	if err != nil {
		return err
	}
	check, err := s.st.CheckSessions(ctx, events)
	if err != nil {
		return err
	}
	keep := events[:0]
	for _, e := range events {
		if reason := check(e); reason != nil {
			bad = append(bad, s.refused(e, replays[e.ID], *reason))
			continue
		}
		keep = append(keep, e)
	}
	rejected, err := s.st.InsertEvents(ctx, keep)
	if err != nil {
		return err
	}
	for _, r := range rejected {
		bad = append(bad, s.refused(r.Event, replays[r.Event.ID], event.Reason{Code: event.CodeStorageRejected, Message: "the database refused this event: " + r.Err.Error()}))
	}
	if err := s.st.MarkReplayed(ctx, lineage(keep, replays)); err != nil {
		return err
	}
	for _, e := range bad {
		m, err := contract.Encode(s.errors, sessionKey(e), &e)
		if err != nil {
			return fmt.Errorf("encode error record %s: %w", e.ID, err)
		}
		out = append(out, m)
	}
	return s.pub.Publish(ctx, out...)
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

// dropErased leaves out events of sessions erased after they were
// received: they were still in the pipeline when the session was erased.
func (s *Sink) dropErased(ctx context.Context, events []event.Event) ([]event.Event, error) {
	sessions := make([]uuid.UUID, len(events))
	for i, e := range events {
		sessions[i] = e.SessionID
	}
	erased, err := s.st.Erased(ctx, sessions)
	if err != nil || len(erased) == 0 {
		return events, err
	}
	keep := events[:0]
	for _, e := range events {
		if at, ok := erased[e.SessionID]; !ok || e.ReceivedAt.After(at) {
			keep = append(keep, e)
		}
	}
	return keep, nil
}

// dropErasedErrors is dropErased for error records.
func (s *Sink) dropErasedErrors(ctx context.Context, recs []contract.Error) ([]contract.Error, error) {
	var sessions []uuid.UUID
	for _, r := range recs {
		if r.SessionID != nil {
			sessions = append(sessions, *r.SessionID)
		}
	}
	erased, err := s.st.Erased(ctx, sessions)
	if err != nil || len(erased) == 0 {
		return recs, err
	}
	keep := recs[:0]
	for _, r := range recs {
		if r.SessionID != nil {
			if at, ok := erased[*r.SessionID]; ok && !r.ReceivedAt.After(at) {
				continue
			}
		}
		keep = append(keep, r)
	}
	return keep, nil
}

// lineage lists the events of a batch that come from replays, with the
// error record each replayed. Events Postgres refused are included: marking
// an event that is not stored changes nothing.
func lineage(events []event.Event, replays map[uuid.UUID]*contract.Replay) []store.Lineage {
	if len(replays) == 0 {
		return nil
	}
	var out []store.Lineage
	for _, e := range events {
		if r := replays[e.ID]; r != nil {
			out = append(out, store.Lineage{EventID: e.ID, ErrorID: r.ErrorID, ReceivedAt: e.ReceivedAt})
		}
	}
	return out
}

// Errors stores a batch from the errors topic.
func (s *Sink) Errors(ctx context.Context, batch []contract.Message) error {
	recs := make([]contract.Error, 0, len(batch))
	var dead []contract.Message
	for _, m := range batch {
		var e contract.Error
		if err := contract.Decode(m.Value, &e); err != nil {
			e = s.undecodable(m, err)
			dead = append(dead, contract.DeadLetter(s.deadLetter, m, contract.StageWriter, err))
		}
		recs = append(recs, e)
	}
	if err := s.pub.Publish(ctx, dead...); err != nil {
		return err
	}
	recs, err := s.dropErasedErrors(ctx, recs)
	if err != nil {
		return err
	}
	return s.st.InsertErrors(ctx, recs)
}

// undecodable records a message that is not a valid envelope. Its id is
// derived from its bytes, so a redelivery is stored once.
func (s *Sink) undecodable(m contract.Message, err error) contract.Error {
	now := event.Canonical(s.now())
	return contract.Error{
		ID: uuid.NewSHA1(uuid.NameSpaceOID, append([]byte(m.Topic+"\x00"), m.Value...)), Stage: contract.StageWriter,
		Reasons: event.Reasons{{Code: event.CodeInvalidEnvelope, Message: err.Error()}},
		Payload: contract.NewPayload(m.Value), ReceivedAt: now, DetectedAt: now,
	}
}

// refused records an event the writer will not store, for reason. An
// event from a replay (replay non-nil) gets an error id of its own, as the
// validator gives it (contract.ErrorID), so the record it replays is kept.
func (s *Sink) refused(e event.Event, replay *contract.Replay, reason event.Reason) contract.Error {
	doc, _ := contract.Encode("", "", &contract.Event{
		ID: e.ID, AppID: e.AppID, SessionID: e.SessionID, Category: e.Category, Name: e.Name,
		Data: e.Data, Timestamp: e.Timestamp, ClientTimestamp: e.ClientTimestamp, ReceivedAt: e.ReceivedAt,
	})
	return contract.Error{
		ID: contract.ErrorID(e.ID, replay), ReplayOf: replay, AppID: e.AppID, SessionID: &e.SessionID, Stage: contract.StageWriter,
		Reasons: event.Reasons{reason}, Payload: contract.NewPayload(doc.Value),
		ReceivedAt: e.ReceivedAt, DetectedAt: event.Canonical(s.now()),
	}
}

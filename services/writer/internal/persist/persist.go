// Package persist is the writer's domain: it decides which validated
// events and error records are stored, and turns every event that can
// never be stored into an error record instead, so no partition stalls on
// it and nothing is silently dropped. It knows nothing of Kafka or SQL:
// storage is the Store it declares (internal/postgres implements it), and
// the topic handlers (internal/kafkaapi) decode its input and publish its
// error records.
package persist

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

// Store is the storage the writer needs.
type Store interface {
	// Erased reports, for the given sessions, when each was last erased
	// (absent: never).
	Erased(ctx context.Context, sessions []uuid.UUID) (map[uuid.UUID]time.Time, error)
	// Sessions returns the stored sessions among ids, by id.
	Sessions(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]Session, error)
	// StrictSessions returns those of apps that have strict sessions.
	StrictSessions(ctx context.Context, apps []uuid.UUID) (map[uuid.UUID]bool, error)
	// InsertEvents stores events idempotently, counting each in its
	// session once, and returns those it refused, with the reason.
	InsertEvents(ctx context.Context, events []event.Event) ([]Rejected, error)
	// MarkReplayed records which stored events come from replays.
	MarkReplayed(ctx context.Context, ls []Lineage) error
	// InsertErrors stores error records idempotently.
	InsertErrors(ctx context.Context, recs []contract.Error) error
}

// Session is what the writer needs to know of a stored session.
type Session struct {
	AppID uuid.UUID
	// Registered: its application registered it (POST /sessions).
	Registered bool
}

// Rejected is an event storage refused, with the reason.
type Rejected struct {
	Event event.Event
	Err   error
}

// Lineage ties a stored event to the error record whose replay produced
// it.
type Lineage struct {
	EventID uuid.UUID
	ErrorID uuid.UUID
	// ReceivedAt is the replayed event's received_at (the original one):
	// an event stored under the same id from another source (a client
	// resending its own id) is not marked.
	ReceivedAt time.Time
}

// Writer stores events and error records through a Store.
type Writer struct {
	st  Store
	now func() time.Time
}

// New returns a Writer on st.
func New(st Store) (*Writer, error) {
	if st == nil {
		return nil, errors.New("persist: nil store")
	}
	return &Writer{st: st, now: time.Now}, nil
}

// Events stores a batch of validated events and returns, as error
// records, those that can never be stored: events of a session that
// belongs to another application, of a session never registered by an
// application with strict sessions, and events storage refused. Events of
// sessions erased after they were received are left out. An error means
// the batch may be retried whole.
func (w *Writer) Events(ctx context.Context, batch []contract.Event) ([]contract.Error, error) {
	events := make([]event.Event, 0, len(batch))
	replays := map[uuid.UUID]*contract.Replay{} // events that come from a replay of an error record
	for i := range batch {
		e := &batch[i]
		if e.ReplayOf != nil {
			replays[e.ID] = e.ReplayOf
		}
		events = append(events, event.Event{
			ID: e.ID, AppID: e.AppID, SessionID: e.SessionID, Category: e.Category, Name: e.Name,
			Data: e.Data, Timestamp: e.Timestamp, ClientTimestamp: e.ClientTimestamp, ReceivedAt: e.ReceivedAt,
		})
	}
	events, err := w.dropErased(ctx, events)
	if err != nil {
		return nil, err
	}
	check, err := w.checkSessions(ctx, events)
	if err != nil {
		return nil, err
	}
	var bad []contract.Error
	keep := events[:0]
	for _, e := range events {
		if reason := check(e); reason != nil {
			bad = append(bad, w.refused(e, replays[e.ID], *reason))
			continue
		}
		keep = append(keep, e)
	}
	rejected, err := w.st.InsertEvents(ctx, keep)
	if err != nil {
		return nil, err
	}
	for _, r := range rejected {
		bad = append(bad, w.refused(r.Event, replays[r.Event.ID], event.Reason{Code: event.CodeStorageRejected, Message: "the database refused this event: " + r.Err.Error()}))
	}
	if err := w.st.MarkReplayed(ctx, lineage(keep, replays)); err != nil {
		return nil, err
	}
	return bad, nil
}

// Errors stores a batch of error records, leaving out those of sessions
// erased after they were received.
func (w *Writer) Errors(ctx context.Context, recs []contract.Error) error {
	recs, err := w.dropErasedErrors(ctx, recs)
	if err != nil {
		return err
	}
	return w.st.InsertErrors(ctx, recs)
}

// checkSessions returns the verdict on each event's session: nil to store
// it, or the reason it must become an error record instead:
//   - a session that belongs to another application: session_conflict (an
//     application can neither read nor add to another's session);
//   - an application with strict sessions and a session it never
//     registered: unknown_session.
//
// Registration is written synchronously by the gateway before it answers,
// so a session registered before its events were sent is always found.
func (w *Writer) checkSessions(ctx context.Context, events []event.Event) (func(event.Event) *event.Reason, error) {
	// Each id once: a batch holds dozens of events per session.
	sessionIDs, appIDs := make([]uuid.UUID, 0, len(events)/4), make([]uuid.UUID, 0, 4)
	seenSession, seenApp := make(map[uuid.UUID]bool, len(events)/4), map[uuid.UUID]bool{}
	for _, e := range events {
		if !seenSession[e.SessionID] {
			seenSession[e.SessionID] = true
			sessionIDs = append(sessionIDs, e.SessionID)
		}
		if !seenApp[e.AppID] {
			seenApp[e.AppID] = true
			appIDs = append(appIDs, e.AppID)
		}
	}
	known, err := w.st.Sessions(ctx, sessionIDs)
	if err != nil {
		return nil, err
	}
	strict, err := w.st.StrictSessions(ctx, appIDs)
	if err != nil {
		return nil, err
	}
	return func(e event.Event) *event.Reason {
		k, ok := known[e.SessionID]
		switch {
		case ok && k.AppID != e.AppID:
			return &event.Reason{Code: event.CodeSessionOwner, Field: "/session_id", Message: "this session belongs to another application"}
		case strict[e.AppID] && !(ok && k.Registered):
			return &event.Reason{Code: event.CodeUnknownSession, Field: "/session_id", Message: "the session was never registered (POST /sessions) and this application has strict sessions"}
		}
		return nil
	}, nil
}

// dropErased leaves out events of sessions erased after they were
// received: they were still in the pipeline when the session was erased,
// and storing them would bring the session back.
func (w *Writer) dropErased(ctx context.Context, events []event.Event) ([]event.Event, error) {
	sessions := make([]uuid.UUID, len(events))
	for i, e := range events {
		sessions[i] = e.SessionID
	}
	erased, err := w.st.Erased(ctx, sessions)
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
func (w *Writer) dropErasedErrors(ctx context.Context, recs []contract.Error) ([]contract.Error, error) {
	var sessions []uuid.UUID
	for _, r := range recs {
		if r.SessionID != nil {
			sessions = append(sessions, *r.SessionID)
		}
	}
	erased, err := w.st.Erased(ctx, sessions)
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
// error record each replayed. Events storage refused are included: marking
// an event that is not stored changes nothing.
func lineage(events []event.Event, replays map[uuid.UUID]*contract.Replay) []Lineage {
	if len(replays) == 0 {
		return nil
	}
	var out []Lineage
	for _, e := range events {
		if r := replays[e.ID]; r != nil {
			out = append(out, Lineage{EventID: e.ID, ErrorID: r.ErrorID, ReceivedAt: e.ReceivedAt})
		}
	}
	return out
}

// refused records an event the writer will not store, for reason. An
// event from a replay (replay non-nil) gets an error id of its own, as the
// validator gives it (contract.ErrorID), so the record it replays is kept.
func (w *Writer) refused(e event.Event, replay *contract.Replay, reason event.Reason) contract.Error {
	doc, _ := contract.Encode("", "", &contract.Event{
		ID: e.ID, AppID: e.AppID, SessionID: e.SessionID, Category: e.Category, Name: e.Name,
		Data: e.Data, Timestamp: e.Timestamp, ClientTimestamp: e.ClientTimestamp, ReceivedAt: e.ReceivedAt,
	})
	return contract.Error{
		ID: contract.ErrorID(e.ID, replay), ReplayOf: replay, AppID: e.AppID, SessionID: &e.SessionID, Stage: contract.StageWriter,
		Reasons: event.Reasons{reason}, Payload: contract.NewPayload(doc.Value),
		ReceivedAt: e.ReceivedAt, DetectedAt: event.Canonical(w.now()),
	}
}

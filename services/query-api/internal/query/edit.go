package query

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/event"
)

// editableKeys are the event fields PUT and PATCH may set.
var editableKeys = []string{"session_id", "session", "category", "name", "data", "timestamp"}

// Replace sets every editable field of event id from doc (PUT). A session
// may be given, but must be the event's own. The change is audited as by.
func (s *Service) Replace(ctx context.Context, sc Scope, by Actor, id uuid.UUID, ifMatch string, doc map[string]json.RawMessage) (Event, error) {
	return s.edit(ctx, sc, by, ActionReplace, id, ifMatch, func(cur Event) map[string]json.RawMessage {
		next := pick(doc)
		if _, _, ok := event.SessionRef(next); !ok {
			next["session_id"] = quote(cur.SessionID.String())
		}
		return next
	})
}

// Patch sets the editable fields present in doc (PATCH); others keep their
// values. Each field is replaced whole, data included. The change is
// audited as by.
func (s *Service) Patch(ctx context.Context, sc Scope, by Actor, id uuid.UUID, ifMatch string, doc map[string]json.RawMessage) (Event, error) {
	return s.edit(ctx, sc, by, ActionPatch, id, ifMatch, func(cur Event) map[string]json.RawMessage {
		next := map[string]json.RawMessage{
			"session_id": quote(cur.SessionID.String()),
			"category":   quote(cur.Category),
			"name":       quote(cur.Name),
			"data":       cur.Data,
			"timestamp":  quote(cur.Timestamp.Format(time.RFC3339Nano)),
		}
		patch := pick(doc)
		if _, _, ok := event.SessionRef(patch); ok {
			delete(next, "session_id")
		}
		for k, v := range patch {
			next[k] = v
		}
		return next
	})
}

// edit runs one read-validate-write cycle on an event under the store's
// lock on it, so concurrent edits apply one after the other instead of
// overwriting each other; ifMatch (an ETag, or "" for none) turns a stale
// read into ErrPrecondition. The result must pass the ingestion rules and
// keep the event's session.
func (s *Service) edit(ctx context.Context, sc Scope, by Actor, action string, id uuid.UUID, ifMatch string, next func(Event) map[string]json.RawMessage) (Event, error) {
	return s.store.Edit(ctx, sc, by, action, id, func(cur Event) (Change, error) {
		if err := precondition(cur, ifMatch); err != nil {
			return Change{}, err
		}
		f, reasons := s.rules.ValidateObject(next(cur), s.now())
		if len(reasons) > 0 {
			return Change{}, reasons
		}
		if f.SessionID != cur.SessionID {
			return Change{}, ErrSessionImmutable
		}
		return Change{Category: f.Category, Name: f.Name, Data: f.Data, Timestamp: f.Timestamp}, nil
	})
}

// Delete removes event id and updates its session; ifMatch as for edits.
// The deletion is audited as by.
func (s *Service) Delete(ctx context.Context, sc Scope, by Actor, id uuid.UUID, ifMatch string) error {
	return s.store.Delete(ctx, sc, by, id, func(cur Event) error { return precondition(cur, ifMatch) })
}

// precondition checks an If-Match value against the event's current
// version: "" and "*" match any.
func precondition(cur Event, ifMatch string) error {
	if ifMatch != "" && ifMatch != "*" && ifMatch != cur.ETag() {
		return ErrPrecondition
	}
	return nil
}

// pick keeps the editable fields of doc.
func pick(doc map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(editableKeys))
	for _, k := range editableKeys {
		if v, ok := doc[k]; ok {
			out[k] = v
		}
	}
	return out
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s) // cannot fail for a string
	return b
}

package query

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/event"
)

// editableKeys are the event fields PUT and PATCH may set.
var editableKeys = []string{"session_id", "session", "category", "name", "data", "timestamp"}

// Replace sets every editable field of event id from doc (PUT). A session
// may be given, but must be the event's own.
func (s *Store) Replace(ctx context.Context, sc Scope, id uuid.UUID, ifMatch string, doc map[string]json.RawMessage) (Event, error) {
	return s.edit(ctx, sc, id, ifMatch, func(cur Event) map[string]json.RawMessage {
		next := pick(doc)
		if _, _, ok := event.SessionRef(next); !ok {
			next["session_id"] = quote(cur.SessionID.String())
		}
		return next
	})
}

// Patch sets the editable fields present in doc (PATCH); others keep their
// values. Each field is replaced whole, data included.
func (s *Store) Patch(ctx context.Context, sc Scope, id uuid.UUID, ifMatch string, doc map[string]json.RawMessage) (Event, error) {
	return s.edit(ctx, sc, id, ifMatch, func(cur Event) map[string]json.RawMessage {
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

// edit runs one read-validate-write cycle on an event under a row lock, so
// concurrent edits apply one after the other instead of overwriting each
// other; ifMatch (an ETag, or "" for none) turns a stale read into
// ErrPrecondition. The session's aggregates are recomputed in the same
// transaction.
func (s *Store) edit(ctx context.Context, sc Scope, id uuid.UUID, ifMatch string, next func(Event) map[string]json.RawMessage) (Event, error) {
	var out Event
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		cur, err := s.lockEvent(ctx, tx, sc, id, ifMatch)
		if err != nil {
			return err
		}
		f, reasons := s.rules.ValidateObject(next(cur), s.now())
		if len(reasons) > 0 {
			return reasons
		}
		if f.SessionID != cur.SessionID {
			return ErrSessionImmutable
		}
		const q = `
			UPDATE events SET category = $2, name = $3, data = $4, "timestamp" = $5, version = version + 1, updated_at = now()
			WHERE id = $1 RETURNING ` + eventCols
		var r eventRow
		if err := tx.GetContext(ctx, &r, q, id, f.Category, f.Name, string(f.Data), f.Timestamp); err != nil {
			return fmt.Errorf("update event: %w", err)
		}
		out = r.toEvent()
		if !f.Timestamp.Equal(cur.Timestamp) {
			return refreshSession(ctx, tx, cur.SessionID)
		}
		return nil
	})
	return out, err
}

// Delete removes event id and updates its session.
func (s *Store) Delete(ctx context.Context, sc Scope, id uuid.UUID, ifMatch string) error {
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		cur, err := s.lockEvent(ctx, tx, sc, id, ifMatch)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete event: %w", err)
		}
		return refreshSession(ctx, tx, cur.SessionID)
	})
}

func (s *Store) lockEvent(ctx context.Context, tx *sqlx.Tx, sc Scope, id uuid.UUID, ifMatch string) (Event, error) {
	var r eventRow
	err := tx.GetContext(ctx, &r, `SELECT `+eventCols+` FROM events WHERE id = $1 AND ($2::uuid IS NULL OR app_id = $2) FOR UPDATE`, id, scopeArg(sc))
	if err != nil {
		return Event{}, notFound(err)
	}
	cur := r.toEvent()
	if ifMatch != "" && ifMatch != "*" && ifMatch != cur.ETag() {
		return Event{}, ErrPrecondition
	}
	return cur, nil
}

// refreshSession recomputes a session's aggregates from its events. The
// session row is locked first: a writer inserting events of this session
// concurrently either committed before (and is counted here) or waits for
// this transaction and then adds its own rows on top.
func refreshSession(ctx context.Context, tx *sqlx.Tx, session uuid.UUID) error {
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, session); err != nil {
		return fmt.Errorf("lock session: %w", err)
	}
	const q = `
		UPDATE sessions s SET first_event_at = a.first, last_event_at = a.last, event_count = a.n
		FROM (SELECT min("timestamp") AS first, max("timestamp") AS last, count(*) AS n FROM events WHERE session_id = $1) a
		WHERE s.id = $1`
	if _, err := tx.ExecContext(ctx, q, session); err != nil {
		return fmt.Errorf("refresh session: %w", err)
	}
	return nil
}

func (s *Store) tx(ctx context.Context, f func(*sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
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

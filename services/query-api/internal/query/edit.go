package query

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// editableKeys are the event fields PUT and PATCH may set.
var editableKeys = []string{"session_id", "session", "category", "name", "data", "timestamp"}

// Replace sets every editable field of event id from doc (PUT). A session
// may be given, but must be the event's own. The change is audited as by.
func (s *Store) Replace(ctx context.Context, sc Scope, by Actor, id uuid.UUID, ifMatch string, doc map[string]json.RawMessage) (Event, error) {
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
func (s *Store) Patch(ctx context.Context, sc Scope, by Actor, id uuid.UUID, ifMatch string, doc map[string]json.RawMessage) (Event, error) {
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

// edit runs one read-validate-write cycle on an event under a row lock, so
// concurrent edits apply one after the other instead of overwriting each
// other; ifMatch (an ETag, or "" for none) turns a stale read into
// ErrPrecondition. The session's aggregates are recomputed and the audit
// entry written in the same transaction.
func (s *Store) edit(ctx context.Context, sc Scope, by Actor, action string, id uuid.UUID, ifMatch string, next func(Event) map[string]json.RawMessage) (Event, error) {
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
		if err := writeAudit(ctx, tx, by, action, cur, &out); err != nil {
			return err
		}
		if !f.Timestamp.Equal(cur.Timestamp.Time) {
			return refreshSession(ctx, tx, cur.SessionID)
		}
		return nil
	})
	return out, err
}

// Delete removes event id and updates its session. The deletion is audited
// as by.
func (s *Store) Delete(ctx context.Context, sc Scope, by Actor, id uuid.UUID, ifMatch string) error {
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		cur, err := s.lockEvent(ctx, tx, sc, id, ifMatch)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete event: %w", err)
		}
		if err := writeAudit(ctx, tx, by, ActionDelete, cur, nil); err != nil {
			return err
		}
		return refreshSession(ctx, tx, cur.SessionID)
	})
}

// writeAudit records a change of an event in tx: the event before and,
// unless it was deleted, after. Its time is taken under the event's row
// lock, so the entries of one event are in the order of its changes.
func writeAudit(ctx context.Context, tx *sqlx.Tx, by Actor, action string, before Event, after *Event) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("audit id: %w", err)
	}
	b, err := json.Marshal(before)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	var a any // NULL for a deletion
	if after != nil {
		j, err := json.Marshal(after)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		a = string(j)
	}
	const q = `
		INSERT INTO event_audit (id, event_id, session_id, action, actor_key_id, actor_app_id, at, before, after)
		VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp(), $7, $8)`
	if _, err := tx.ExecContext(ctx, q, id, before.ID, before.SessionID, action, by.KeyID, by.AppID, string(b), a); err != nil {
		return fmt.Errorf("write audit: %w", err)
	}
	return nil
}

const auditCols = `id, event_id, session_id, action, actor_key_id, actor_app_id, at, before, after`

type auditRow struct {
	ID         uuid.UUID `db:"id"`
	EventID    uuid.UUID `db:"event_id"`
	SessionID  uuid.UUID `db:"session_id"`
	Action     string    `db:"action"`
	ActorKeyID uuid.UUID `db:"actor_key_id"`
	ActorAppID uuid.UUID `db:"actor_app_id"`
	At         time.Time `db:"at"`
	Before     []byte    `db:"before"`
	After      []byte    `db:"after"`
}

func (r auditRow) toEntry() (AuditEntry, error) {
	e := AuditEntry{ID: r.ID, EventID: r.EventID, SessionID: r.SessionID, Action: r.Action,
		ActorKeyID: r.ActorKeyID, ActorAppID: r.ActorAppID, At: apitime.New(r.At)}
	for _, x := range []struct {
		src []byte
		dst **Event
	}{{r.Before, &e.Before}, {r.After, &e.After}} {
		if x.src == nil {
			continue
		}
		var ev Event
		if err := json.Unmarshal(x.src, &ev); err != nil {
			return AuditEntry{}, fmt.Errorf("decode audit entry %s: %w", r.ID, err)
		}
		ev.Session = SessionRef{ID: ev.SessionID} // entries written before events had it
		*x.dst = &ev
	}
	return e, nil
}

// Audit lists the changes made to event id, oldest first, one page at a
// time; it is meant for admins and is not scoped. An event that neither
// exists nor has an audit is ErrNotFound.
func (s *Store) Audit(ctx context.Context, id uuid.UUID, p paging.Request) ([]AuditEntry, paging.Links, error) {
	w, err := openWindow("audit", Oldest, p)
	if err != nil {
		return nil, paging.Links{}, err
	}
	var l list
	l.add("event_id = ?", id)
	q, args := l.page(auditCols, "event_audit", "at", w)
	var rows []auditRow
	if err := s.selectRows(ctx, &rows, q, args...); err != nil {
		return nil, paging.Links{}, err
	}
	if len(rows) == 0 && p.Cursor == "" {
		if _, err := s.Event(ctx, Scope{}, id); err != nil {
			return nil, paging.Links{}, err
		}
	}
	return pageOf(w, rows, auditRow.toEntry, func(r auditRow) pos { return pos{r.At, r.ID} })
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

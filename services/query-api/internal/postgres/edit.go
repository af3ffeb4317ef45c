package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/sessions"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// Edit implements query.Editor: the event is locked (FOR UPDATE), decide
// sees it, and the update, its audit entry and, when the timestamp moved,
// the session's recount (pkg/sessions) commit together.
func (s *Store) Edit(ctx context.Context, sc query.Scope, by query.Actor, action string, id uuid.UUID, decide func(query.Event) (query.Change, error)) (query.Event, error) {
	var out query.Event
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		cur, err := lockEvent(ctx, tx, sc, id)
		if err != nil {
			return err
		}
		c, err := decide(cur)
		if err != nil {
			return err
		}
		const q = `
			UPDATE events SET category = $2, name = $3, data = $4, "timestamp" = $5, version = version + 1, updated_at = now()
			WHERE id = $1 RETURNING ` + eventCols
		var r eventRow
		if err := tx.GetContext(ctx, &r, q, id, c.Category, c.Name, string(c.Data), c.Timestamp); err != nil {
			return fmt.Errorf("update event: %w", err)
		}
		out = r.toEvent()
		if err := writeAudit(ctx, tx, by, action, cur, &out); err != nil {
			return err
		}
		if !c.Timestamp.Equal(cur.Timestamp.Time) {
			return sessions.Recount(ctx, tx, cur.SessionID)
		}
		return nil
	})
	return out, err
}

// Delete implements query.Editor: the deletion, its audit entry and the
// session's recount commit together.
func (s *Store) Delete(ctx context.Context, sc query.Scope, by query.Actor, id uuid.UUID, check func(query.Event) error) error {
	return s.tx(ctx, func(tx *sqlx.Tx) error {
		cur, err := lockEvent(ctx, tx, sc, id)
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id = $1`, id); err != nil {
			return fmt.Errorf("delete event: %w", err)
		}
		if err := writeAudit(ctx, tx, by, query.ActionDelete, cur, nil); err != nil {
			return err
		}
		return sessions.Recount(ctx, tx, cur.SessionID)
	})
}

// writeAudit records a change of an event in tx: the event before and,
// unless it was deleted, after. Its time is taken under the event's row
// lock, so the entries of one event are in the order of its changes.
func writeAudit(ctx context.Context, tx *sqlx.Tx, by query.Actor, action string, before query.Event, after *query.Event) error {
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

func (r auditRow) toEntry() (query.AuditEntry, error) {
	e := query.AuditEntry{ID: r.ID, EventID: r.EventID, SessionID: r.SessionID, Action: r.Action,
		ActorKeyID: r.ActorKeyID, ActorAppID: r.ActorAppID, At: apitime.New(r.At)}
	for _, x := range []struct {
		src []byte
		dst **query.Event
	}{{r.Before, &e.Before}, {r.After, &e.After}} {
		if x.src == nil {
			continue
		}
		var ev query.Event
		if err := json.Unmarshal(x.src, &ev); err != nil {
			return query.AuditEntry{}, fmt.Errorf("decode audit entry %s: %w", r.ID, err)
		}
		ev.Session = query.SessionRef{ID: ev.SessionID} // entries written before events had it
		*x.dst = &ev
	}
	return e, nil
}

// Audit implements query.Reader.
func (s *Store) Audit(ctx context.Context, id uuid.UUID, p paging.Request) ([]query.AuditEntry, paging.Links, error) {
	w, err := openWindow("audit", query.Oldest, p)
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
	return pageOf(w, rows, auditRow.toEntry, func(r auditRow) pos { return pos{r.At, r.ID} })
}

// lockEvent reads event id (visible in sc) and locks it until tx ends.
func lockEvent(ctx context.Context, tx *sqlx.Tx, sc query.Scope, id uuid.UUID) (query.Event, error) {
	var r eventRow
	err := tx.GetContext(ctx, &r, `SELECT `+eventCols+` FROM events WHERE id = $1 AND ($2::uuid IS NULL OR app_id = $2) FOR UPDATE`, id, scopeArg(sc))
	if err != nil {
		return query.Event{}, notFound(err)
	}
	return r.toEvent(), nil
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

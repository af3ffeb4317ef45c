package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/sessions"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// SessionApp implements query.Erasures: the session (pkg/sessions), then
// its events, then its error records.
func (s *Store) SessionApp(ctx context.Context, id uuid.UUID) (uuid.UUID, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, err := s.sessions.Get(ctx, id, nil)
	switch {
	case err == nil:
		return r.AppID, nil
	case !errors.Is(err, sessions.ErrNotFound):
		return uuid.Nil, fmt.Errorf("session application: %w", err)
	}
	const q = `SELECT COALESCE(
		(SELECT app_id FROM events WHERE session_id = $1 LIMIT 1),
		(SELECT app_id FROM errors WHERE session_id = $1 LIMIT 1),
		'00000000-0000-0000-0000-000000000000')`
	var app uuid.UUID
	if err := s.db.GetContext(ctx, &app, q, id); err != nil {
		return uuid.Nil, fmt.Errorf("session application: %w", err)
	}
	return app, nil
}

// Erase implements query.Erasures. The session row is locked first, as
// edits do, so a writer adding events to the session concurrently either
// committed before (and its rows are deleted here) or waits and then
// creates the session anew.
func (s *Store) Erase(ctx context.Context, by query.Actor, t contract.Tombstone) (query.Erasure, error) {
	out := query.Erasure{SessionID: t.SessionID, TombstoneID: t.ID}
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		if err := sessions.Lock(ctx, tx, t.SessionID); err != nil {
			return err
		}
		for _, d := range []struct {
			q string
			n *int64
		}{
			{`DELETE FROM event_audit WHERE session_id = $1`, &out.AuditEntries},
			{`DELETE FROM events WHERE session_id = $1`, &out.Events},
			{`DELETE FROM errors WHERE session_id = $1`, &out.Errors},
		} {
			res, err := tx.ExecContext(ctx, d.q, t.SessionID)
			if err != nil {
				return fmt.Errorf("erase session: %w", err)
			}
			if *d.n, err = res.RowsAffected(); err != nil {
				return fmt.Errorf("erase session: %w", err)
			}
		}
		var err error
		if out.Session, err = sessions.Delete(ctx, tx, t.SessionID); err != nil {
			return fmt.Errorf("erase session: %w", err)
		}
		const q = `
			INSERT INTO session_erasures (id, session_id, app_id, actor_key_id, actor_app_id, requested_at, events, errors, audit_entries)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
		if _, err := tx.ExecContext(ctx, q, t.ID, t.SessionID, t.AppID, by.KeyID, by.AppID, t.RequestedAt,
			out.Events, out.Errors, out.AuditEntries); err != nil {
			return fmt.Errorf("record erasure: %w", err)
		}
		return nil
	})
	if err != nil {
		return query.Erasure{}, err
	}
	return out, nil
}

package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/contract"
)

// Publisher publishes messages, returning nil only once Kafka acknowledged
// every one of them (kafkax.Producer).
type Publisher interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// Eraser erases sessions: a tombstone on the erasures topic, then the
// session's rows in Postgres.
type Eraser struct {
	store   *Store
	pub     Publisher
	topic   string
	timeout time.Duration // for the publication
	now     func() time.Time
}

// NewEraser returns an Eraser that publishes tombstones on topic through
// pub, waiting at most publishTimeout for the acknowledgement.
func NewEraser(store *Store, pub Publisher, topic string, publishTimeout time.Duration) (*Eraser, error) {
	switch {
	case store == nil || pub == nil:
		return nil, errors.New("query: eraser needs a store and a publisher")
	case topic == "":
		return nil, errors.New("query: eraser needs a topic")
	case publishTimeout <= 0:
		return nil, errors.New("query: publish timeout must be positive")
	}
	return &Eraser{store: store, pub: pub, topic: topic, timeout: publishTimeout, now: time.Now}, nil
}

// Erase removes session id — its events, its error records, the audit of
// its events and the session row — and records who did it as by.
//
// The tombstone is published first, and the rows are deleted only once
// Kafka acknowledged it: an erasure that returns nil has been announced to
// the topics' consumers and is done in Postgres. If the publication fails
// nothing is deleted (ErrNotPublished); if the deletion fails after it, the
// caller retries, and the second tombstone is harmless. The other order
// could delete the rows and then lose the tombstone, leaving copies
// downstream that nobody is told to erase. A session nothing is known of is
// still announced: consumers may hold records that never reached Postgres.
func (e *Eraser) Erase(ctx context.Context, by Actor, id uuid.UUID) (Erasure, error) {
	app, err := e.store.sessionApp(ctx, id)
	if err != nil {
		return Erasure{}, err
	}
	tid, err := uuid.NewV7()
	if err != nil {
		return Erasure{}, fmt.Errorf("tombstone id: %w", err)
	}
	t := contract.Tombstone{ID: tid, SessionID: id, AppID: app, RequestedAt: e.now().UTC().Truncate(time.Microsecond)}
	msg, err := contract.Encode(e.topic, id.String(), &t)
	if err != nil {
		return Erasure{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := e.pub.Publish(pctx, msg); err != nil {
		return Erasure{}, fmt.Errorf("%w: %w", ErrNotPublished, err)
	}
	return e.store.erase(ctx, by, t)
}

// sessionApp is the application of session id, from the first place that
// knows it; uuid.Nil when none does.
func (s *Store) sessionApp(ctx context.Context, id uuid.UUID) (uuid.UUID, error) {
	const q = `SELECT COALESCE(
		(SELECT app_id FROM sessions WHERE id = $1),
		(SELECT app_id FROM events WHERE session_id = $1 LIMIT 1),
		(SELECT app_id FROM errors WHERE session_id = $1 LIMIT 1),
		'00000000-0000-0000-0000-000000000000')`
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var app uuid.UUID
	if err := s.db.GetContext(ctx, &app, q, id); err != nil {
		return uuid.Nil, fmt.Errorf("session application: %w", err)
	}
	return app, nil
}

// erase deletes everything of the session t names in one transaction and
// records the erasure. The session row is locked first, as edits do, so a
// writer adding events to the session concurrently either committed before
// (and its rows are deleted here) or waits and then creates the session
// anew.
func (s *Store) erase(ctx context.Context, by Actor, t contract.Tombstone) (Erasure, error) {
	out := Erasure{SessionID: t.SessionID, TombstoneID: t.ID}
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, t.SessionID); err != nil {
			return fmt.Errorf("lock session: %w", err)
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
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, t.SessionID)
		if err != nil {
			return fmt.Errorf("erase session: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("erase session: %w", err)
		}
		out.Session = n > 0
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
		return Erasure{}, err
	}
	return out, nil
}

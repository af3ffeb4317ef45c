package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/event"
)

// SessionCheck is a verdict on an event's session: nil to store it, or the
// reason it must become an error record instead.
type SessionCheck func(e event.Event) *event.Reason

// CheckSessions looks up the sessions of a batch and their applications'
// settings, and returns the verdict for each event:
//   - a session that belongs to another application: session_conflict (an
//     application can neither read nor add to another's session);
//   - an application with strict sessions and a session it never
//     registered: unknown_session.
//
// Registration is written synchronously by the gateway before it answers,
// so a session registered before its events were sent is always found.
func (s *Store) CheckSessions(ctx context.Context, events []event.Event) (SessionCheck, error) {
	sessionIDs, appIDs := make([]string, 0, len(events)), make([]string, 0, 4)
	seenApp := map[uuid.UUID]bool{}
	for _, e := range events {
		sessionIDs = append(sessionIDs, e.SessionID.String())
		if !seenApp[e.AppID] {
			seenApp[e.AppID] = true
			appIDs = append(appIDs, e.AppID.String())
		}
	}
	const qSessions = `SELECT id, app_id, registered_at IS NOT NULL AS registered FROM sessions WHERE id = ANY($1::uuid[])`
	var sessions []struct {
		ID         uuid.UUID `db:"id"`
		AppID      uuid.UUID `db:"app_id"`
		Registered bool      `db:"registered"`
	}
	if err := s.db.SelectContext(ctx, &sessions, qSessions, pq.Array(sessionIDs)); err != nil {
		return nil, fmt.Errorf("look up sessions: %w", err)
	}
	const qApps = `SELECT id FROM applications WHERE strict_sessions AND id = ANY($1::uuid[])`
	var strictApps []uuid.UUID
	if err := s.db.SelectContext(ctx, &strictApps, qApps, pq.Array(appIDs)); err != nil {
		return nil, fmt.Errorf("look up applications: %w", err)
	}
	type known struct {
		app        uuid.UUID
		registered bool
	}
	byID := make(map[uuid.UUID]known, len(sessions))
	for _, x := range sessions {
		byID[x.ID] = known{x.AppID, x.Registered}
	}
	strict := make(map[uuid.UUID]bool, len(strictApps))
	for _, a := range strictApps {
		strict[a] = true
	}
	return func(e event.Event) *event.Reason {
		k, ok := byID[e.SessionID]
		switch {
		case ok && k.app != e.AppID:
			return &event.Reason{Code: event.CodeSessionOwner, Field: "/session_id", Message: "this session belongs to another application"}
		case strict[e.AppID] && !(ok && k.registered):
			return &event.Reason{Code: event.CodeUnknownSession, Field: "/session_id", Message: "the session was never registered (POST /sessions) and this application has strict sessions"}
		}
		return nil
	}, nil
}

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
	// Each id once: a batch holds dozens of events per session, and parsing
	// the array is a large part of the lookup.
	sessionIDs, appIDs := make([]string, 0, len(events)/4), make([]string, 0, 4)
	seenSession, seenApp := make(map[uuid.UUID]bool, len(events)/4), map[uuid.UUID]bool{}
	for _, e := range events {
		if !seenSession[e.SessionID] {
			seenSession[e.SessionID] = true
			sessionIDs = append(sessionIDs, e.SessionID.String())
		}
		if !seenApp[e.AppID] {
			seenApp[e.AppID] = true
			appIDs = append(appIDs, e.AppID.String())
		}
	}
	// One round trip: the batch's known sessions, then its applications
	// that have strict sessions (rows with strict_app set, id = app_id).
	const q = `
SELECT id, app_id, registered_at IS NOT NULL AS registered, false AS strict_app FROM sessions WHERE id = ANY($1::uuid[])
UNION ALL
SELECT id, id, false, true FROM applications WHERE strict_sessions AND id = ANY($2::uuid[])`
	var rows []struct {
		ID         uuid.UUID `db:"id"`
		AppID      uuid.UUID `db:"app_id"`
		Registered bool      `db:"registered"`
		StrictApp  bool      `db:"strict_app"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, pq.Array(sessionIDs), pq.Array(appIDs)); err != nil {
		return nil, fmt.Errorf("look up sessions and applications: %w", err)
	}
	type known struct {
		app        uuid.UUID
		registered bool
	}
	byID := make(map[uuid.UUID]known, len(rows))
	strict := map[uuid.UUID]bool{}
	for _, x := range rows {
		if x.StrictApp {
			strict[x.ID] = true
		} else {
			byID[x.ID] = known{x.AppID, x.Registered}
		}
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

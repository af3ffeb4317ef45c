package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/services/writer/internal/persist"
)

// Sessions implements persist.Store through pkg/sessions, the sessions
// table's owner.
func (s *Store) Sessions(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]persist.Session, error) {
	known, err := s.sessions.Lookup(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]persist.Session, len(known))
	for id, k := range known {
		out[id] = persist.Session{AppID: k.AppID, Registered: k.Registered}
	}
	return out, nil
}

// StrictSessions implements persist.Store through pkg/auth, where the
// applications' settings are read.
func (s *Store) StrictSessions(ctx context.Context, apps []uuid.UUID) (map[uuid.UUID]bool, error) {
	set, err := auth.ReadSettings(ctx, s.db, apps...)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]bool, len(set))
	for id, a := range set {
		if a.StrictSessions {
			out[id] = true
		}
	}
	return out, nil
}

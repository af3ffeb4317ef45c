package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Erased reports, for the given sessions, when each was last erased
// (DELETE /sessions/{id} on query-api). Events and errors of a session that
// were received before its erasure but were still in the pipeline when it
// ran must not be stored afterwards: that would bring the session back.
func (s *Store) Erased(ctx context.Context, sessions []uuid.UUID) (map[uuid.UUID]time.Time, error) {
	if len(sessions) == 0 {
		return nil, nil
	}
	// Each id once: a batch holds dozens of events per session.
	ids := make([]string, 0, len(sessions)/4)
	seen := make(map[uuid.UUID]bool, len(sessions)/4)
	for _, id := range sessions {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id.String())
		}
	}
	const q = `SELECT session_id, max(requested_at) AS at FROM session_erasures WHERE session_id = ANY($1::uuid[]) GROUP BY session_id`
	var rows []struct {
		Session uuid.UUID `db:"session_id"`
		At      time.Time `db:"at"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("look up erasures: %w", err)
	}
	out := make(map[uuid.UUID]time.Time, len(rows))
	for _, r := range rows {
		out[r.Session] = r.At
	}
	return out, nil
}

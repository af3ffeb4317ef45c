package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// OldestErrors implements query.Replays.
func (s *Store) OldestErrors(ctx context.Context, sc query.Scope, f query.ErrorFilter, after *query.Error, n int) ([]query.Error, error) {
	w := window{order: query.Oldest, limit: n}
	if after != nil {
		w.after = &pos{T: after.DetectedAt.Time, ID: after.ID}
	}
	var l list
	l.errorFilter(sc, f)
	q, args := l.page(errorCols, "errors", "detected_at", w)
	var rows []errorRow
	if err := s.selectRows(ctx, &rows, q, args...); err != nil {
		return nil, err
	}
	out := make([]query.Error, len(rows))
	for i, r := range rows {
		var err error
		if out[i], err = r.toError(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resolveRoots finds, for each record, the record its chain of failed
// replays started from (replay_of, followed up to $2 links; where a link
// is missing, e.g. erased, the last record found) and whether that record
// is an invalid_envelope.
const resolveRoots = `
WITH RECURSIVE up (start, id, replay_of, codes, depth) AS (
	SELECT id, id, replay_of, reason_codes, 0 FROM errors WHERE id = ANY($1::uuid[])
	UNION ALL
	SELECT up.start, e.id, e.replay_of, e.reason_codes, up.depth + 1
	FROM up JOIN errors e ON e.id = up.replay_of
	WHERE up.depth < $2
)
SELECT DISTINCT ON (start) start, id, 'invalid_envelope' = ANY(codes) AS envelope
FROM up ORDER BY start, depth DESC`

// ReplayRoots implements query.Replays.
func (s *Store) ReplayRoots(ctx context.Context, ids []uuid.UUID, maxChain int) (map[uuid.UUID]query.ReplayRoot, error) {
	var rows []struct {
		Start    uuid.UUID `db:"start"`
		ID       uuid.UUID `db:"id"`
		Envelope bool      `db:"envelope"`
	}
	if err := s.selectRows(ctx, &rows, resolveRoots, pq.Array(ids), maxChain); err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]query.ReplayRoot, len(rows))
	for _, r := range rows {
		out[r.Start] = query.ReplayRoot{ID: r.ID, Envelope: r.Envelope}
	}
	return out, nil
}

// NextAttempts implements query.Replays.
func (s *Store) NextAttempts(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int, error) {
	const q = `UPDATE errors SET replay_attempts = replay_attempts + 1 WHERE id = ANY($1::uuid[]) RETURNING id, replay_attempts`
	var rows []struct {
		ID      uuid.UUID `db:"id"`
		Attempt int       `db:"replay_attempts"`
	}
	if err := s.selectRows(ctx, &rows, q, pq.Array(ids)); err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]int, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Attempt
	}
	return out, nil
}

// MarkReplayed implements query.Replays.
func (s *Store) MarkReplayed(ctx context.Context, ids, events []uuid.UUID) error {
	const q = `
		UPDATE errors e SET replayed_as = t.event_id, replayed_at = now()
		FROM unnest($1::uuid[], $2::uuid[]) AS t(id, event_id) WHERE e.id = t.id`
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, q, pq.Array(ids), pq.Array(events)); err != nil {
		return fmt.Errorf("record replays: %w", err)
	}
	return nil
}

// StrictTypes implements query.Replays, through auth.ReadSettings.
func (s *Store) StrictTypes(ctx context.Context, app uuid.UUID) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	set, err := auth.ReadSettings(ctx, s.db, app) // an unknown application is not strict
	if err != nil {
		return false, fmt.Errorf("strict types of %s: %w", app, err)
	}
	return set[app].StrictTypes, nil
}

// PublishedSchemas implements query.Replays.
func (s *Store) PublishedSchemas(ctx context.Context) ([]query.SchemaSource, error) {
	var rows []struct {
		Category string `db:"category"`
		Name     string `db:"name"`
		Version  int    `db:"version"`
		Schema   []byte `db:"schema"`
	}
	const q = `SELECT category, name, version, schema FROM event_schemas WHERE published_at IS NOT NULL`
	if err := s.selectRows(ctx, &rows, q); err != nil {
		return nil, err
	}
	out := make([]query.SchemaSource, len(rows))
	for i, r := range rows {
		out[i] = query.SchemaSource{Category: r.Category, Name: r.Name, Version: r.Version, Schema: r.Schema}
	}
	return out, nil
}

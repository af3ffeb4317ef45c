package auth

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// This file holds every read of the applications' settings: the gateway
// (with each key, LookupKey), the validator (strict types), the writer
// (strict sessions) and the query-api's replay (strict types) all go
// through it (ReadSettings).

// settingsCols are the applications columns that make AppSettings, from
// the applications table aliased a; settingsRow scans them.
const settingsCols = `a.allowed_origins, a.rate_limit, a.rate_burst, a.strict_sessions, a.strict_types`

type settingsRow struct {
	AllowedOrigins pq.StringArray `db:"allowed_origins"`
	RateLimit      float64        `db:"rate_limit"`
	RateBurst      int            `db:"rate_burst"`
	StrictSessions bool           `db:"strict_sessions"`
	StrictTypes    bool           `db:"strict_types"`
}

func (r settingsRow) settings() AppSettings {
	return AppSettings{AllowedOrigins: []string(r.AllowedOrigins), RateLimit: r.RateLimit, RateBurst: r.RateBurst,
		StrictSessions: r.StrictSessions, StrictTypes: r.StrictTypes}
}

// ReadSettings returns the settings of those of apps (which may repeat)
// that exist, disabled or not, by id, in one query on db.
func ReadSettings(ctx context.Context, db sqlx.QueryerContext, apps ...uuid.UUID) (map[uuid.UUID]AppSettings, error) {
	ids := make([]string, 0, len(apps))
	seen := make(map[uuid.UUID]bool, len(apps))
	for _, id := range apps {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id.String())
		}
	}
	const q = `SELECT a.id, ` + settingsCols + ` FROM applications a WHERE a.id = ANY($1::uuid[])`
	var rows []struct {
		ID uuid.UUID `db:"id"`
		settingsRow
	}
	if err := sqlx.SelectContext(ctx, db, &rows, q, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("application settings: %w", err)
	}
	out := make(map[uuid.UUID]AppSettings, len(rows))
	for _, r := range rows {
		out[r.ID] = r.settings()
	}
	return out, nil
}

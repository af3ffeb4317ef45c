package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// errorExtraCols are the columns of error records beyond the basics: what
// teams filter and group by, and replay lineage.
const errorExtraCols = `category, name, schema_version, replay_of, replay_attempts, replayed_as, replayed_at`

// errorExtra scans errorExtraCols.
type errorExtra struct {
	Category       sql.NullString `db:"category"`
	Name           sql.NullString `db:"name"`
	SchemaVersion  sql.NullInt32  `db:"schema_version"`
	ReplayOf       uuid.NullUUID  `db:"replay_of"`
	ReplayAttempts int            `db:"replay_attempts"`
	ReplayedAs     uuid.NullUUID  `db:"replayed_as"`
	ReplayedAt     sql.NullTime   `db:"replayed_at"`
}

func (x errorExtra) fill(e *query.Error) {
	if x.Category.Valid {
		e.Category = &x.Category.String
	}
	if x.Name.Valid {
		e.Name = &x.Name.String
	}
	if x.SchemaVersion.Valid {
		v := int(x.SchemaVersion.Int32)
		e.SchemaVersion = &v
	}
	if x.ReplayOf.Valid {
		e.ReplayOf = &x.ReplayOf.UUID
	}
	e.ReplayAttempts = x.ReplayAttempts
	if x.ReplayedAs.Valid {
		e.ReplayedAs = &x.ReplayedAs.UUID
	}
	e.ReplayedAt = apitime.Null(x.ReplayedAt)
}

// errorFilter adds the conditions of f, within what sc may see. The list,
// the summary and the bulk replay select error records through it alike.
func (l *list) errorFilter(sc query.Scope, f query.ErrorFilter) {
	l.scope(sc, f.Application)
	if f.Session != nil {
		l.add("session_id = ?", *f.Session)
	}
	if f.Reason != "" {
		l.add("reason_codes @> ?", pq.StringArray{f.Reason})
	}
	if f.Stage != "" {
		l.add("stage = ?", f.Stage)
	}
	if f.Category != "" {
		l.add("category = ?", f.Category)
	}
	if f.Name != "" {
		l.add("name = ?", f.Name)
	}
	if f.Replayed != nil {
		if *f.Replayed {
			l.where = append(l.where, "replayed_as IS NOT NULL")
		} else {
			l.where = append(l.where, "replayed_as IS NULL")
		}
	}
	l.between("detected_at", f.From, f.To)
}

type groupRow struct {
	Reason        sql.NullString `db:"reason"`
	Category      sql.NullString `db:"category"`
	Name          sql.NullString `db:"name"`
	SchemaVersion sql.NullInt32  `db:"schema_version"`
	Stage         sql.NullString `db:"stage"`
	Count         int64          `db:"count"`
	FirstSeen     time.Time      `db:"first_seen"`
	LastSeen      time.Time      `db:"last_seen"`
}

// summaryCols are the grouped expressions of each dimension, and what an
// ungrouped dimension reads as.
var summaryCols = map[string][2]string{
	query.ByReason:        {"r.reason", "NULL::text"},
	query.ByCategory:      {"e.category", "NULL::text"},
	query.ByName:          {"e.name", "NULL::text"},
	query.BySchemaVersion: {"e.schema_version", "NULL::integer"},
	query.ByStage:         {"e.stage", "NULL::text"},
}

// Summary implements query.Reader: by is checked and not empty.
func (s *Store) Summary(ctx context.Context, sc query.Scope, f query.ErrorFilter, by []string) (query.ErrorSummary, error) {
	grouped := map[string]bool{}
	for _, d := range by {
		if _, ok := summaryCols[d]; !ok {
			return query.ErrorSummary{}, fmt.Errorf("%w: %q", query.ErrBadGrouping, d)
		}
		grouped[d] = true
	}
	var l list
	l.errorFilter(sc, f)
	source := "errors e"
	if grouped[query.ByReason] {
		// Each record counts once per distinct reason code it has.
		source += " CROSS JOIN LATERAL (SELECT DISTINCT unnest(e.reason_codes) AS reason) r"
	}
	var cols, keys []string
	for _, d := range query.SummaryDimensions {
		expr := summaryCols[d]
		if grouped[d] {
			cols, keys = append(cols, expr[0]+" AS "+d), append(keys, expr[0])
		} else {
			cols = append(cols, expr[1]+" AS "+d)
		}
	}
	q := `SELECT ` + strings.Join(cols, ", ") + `, count(*) AS count, min(e.detected_at) AS first_seen, max(e.detected_at) AS last_seen
FROM ` + source + l.whereClause() + `
GROUP BY ` + strings.Join(keys, ", ") + `
ORDER BY count DESC, last_seen DESC, ` + strings.Join(keys, ", ") + `
LIMIT ` + l.param(query.MaxSummaryGroups+1)
	var rows []groupRow
	if err := s.selectRows(ctx, &rows, q, l.args...); err != nil {
		return query.ErrorSummary{}, err
	}
	out := query.ErrorSummary{By: by, Groups: make([]query.ErrorGroup, 0, min(len(rows), query.MaxSummaryGroups))}
	if len(rows) > query.MaxSummaryGroups {
		rows, out.Truncated = rows[:query.MaxSummaryGroups], true
	}
	for _, r := range rows {
		g := query.ErrorGroup{Count: r.Count, FirstSeen: apitime.New(r.FirstSeen), LastSeen: apitime.New(r.LastSeen)}
		text := func(d string, v sql.NullString) *string {
			if !grouped[d] || !v.Valid {
				return nil
			}
			return &v.String
		}
		g.Reason, g.Category, g.Name, g.Stage = text(query.ByReason, r.Reason), text(query.ByCategory, r.Category), text(query.ByName, r.Name), text(query.ByStage, r.Stage)
		if grouped[query.BySchemaVersion] && r.SchemaVersion.Valid {
			v := int(r.SchemaVersion.Int32)
			g.SchemaVersion = &v
		}
		out.Groups = append(out.Groups, g)
	}
	return out, nil
}

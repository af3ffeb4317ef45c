package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/the-eye/eye/services/query-api/internal/apitime"
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

func (x errorExtra) fill(e *Error) {
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
func (l *list) errorFilter(sc Scope, f ErrorFilter) {
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

// Dimensions an error summary can group by.
const (
	ByReason        = "reason"
	ByCategory      = "category"
	ByName          = "name"
	BySchemaVersion = "schema_version"
	ByStage         = "stage"
)

// SummaryDimensions lists the dimensions an error summary can group by.
var SummaryDimensions = []string{ByReason, ByCategory, ByName, BySchemaVersion, ByStage}

// MaxSummaryGroups bounds the groups of one summary: the most frequent are
// kept.
const MaxSummaryGroups = 1000

// ErrBadGrouping is a summary asked to group by an unknown dimension.
var ErrBadGrouping = errors.New("unknown grouping")

// ErrorGroup is one group of an error summary: the values of the grouped
// dimensions (null for the others, and for a grouped value a record does
// not have), how many records it has, and when the first and last of them
// were detected.
type ErrorGroup struct {
	// Reason is a reason code; a record with several reasons counts in the
	// group of each.
	Reason *string `json:"reason" extensions:"x-nullable" example:"empty_data"`
	// Category, Name and SchemaVersion are null in a group of records that
	// have none (e.g. payloads that are not JSON objects).
	Category      *string `json:"category" extensions:"x-nullable" example:"page interaction"`
	Name          *string `json:"name" extensions:"x-nullable" example:"pageview"`
	SchemaVersion *int    `json:"schema_version" extensions:"x-nullable" example:"2"`
	Stage         *string `json:"stage" extensions:"x-nullable" example:"validator"`
	Count         int64   `json:"count" example:"42"`
	// FirstSeen and LastSeen are the earliest and latest detection times.
	FirstSeen apitime.Time `json:"first_seen"`
	LastSeen  apitime.Time `json:"last_seen"`
}

// ErrorSummary is the error records matching a filter, grouped.
type ErrorSummary struct {
	// By lists the dimensions grouped by, in the order asked.
	By []string `json:"by" example:"reason,category"`
	// Groups are the groups, most records first (then most recent).
	Groups []ErrorGroup `json:"groups"`
	// Truncated: there were more than MaxSummaryGroups groups; the most
	// frequent are shown.
	Truncated bool `json:"truncated"`
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
	ByReason:        {"r.reason", "NULL::text"},
	ByCategory:      {"e.category", "NULL::text"},
	ByName:          {"e.name", "NULL::text"},
	BySchemaVersion: {"e.schema_version", "NULL::integer"},
	ByStage:         {"e.stage", "NULL::text"},
}

// Summary groups the error records matching f by the dimensions in by
// (reason when empty) with their count and first and last detection, most
// frequent first.
func (s *Store) Summary(ctx context.Context, sc Scope, f ErrorFilter, by []string) (ErrorSummary, error) {
	if len(by) == 0 {
		by = []string{ByReason}
	}
	grouped := map[string]bool{}
	for _, d := range by {
		if _, ok := summaryCols[d]; !ok || grouped[d] {
			return ErrorSummary{}, fmt.Errorf("%w: %q (one of %s, each once)", ErrBadGrouping, d, strings.Join(SummaryDimensions, ", "))
		}
		grouped[d] = true
	}
	var l list
	l.errorFilter(sc, f)
	source := "errors e"
	if grouped[ByReason] {
		// Each record counts once per distinct reason code it has.
		source += " CROSS JOIN LATERAL (SELECT DISTINCT unnest(e.reason_codes) AS reason) r"
	}
	var cols, keys []string
	for _, d := range SummaryDimensions {
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
LIMIT ` + l.param(MaxSummaryGroups+1)
	var rows []groupRow
	if err := s.selectRows(ctx, &rows, q, l.args...); err != nil {
		return ErrorSummary{}, err
	}
	out := ErrorSummary{By: by, Groups: make([]ErrorGroup, 0, min(len(rows), MaxSummaryGroups))}
	if len(rows) > MaxSummaryGroups {
		rows, out.Truncated = rows[:MaxSummaryGroups], true
	}
	for _, r := range rows {
		g := ErrorGroup{Count: r.Count, FirstSeen: apitime.New(r.FirstSeen), LastSeen: apitime.New(r.LastSeen)}
		text := func(d string, v sql.NullString) *string {
			if !grouped[d] || !v.Valid {
				return nil
			}
			return &v.String
		}
		g.Reason, g.Category, g.Name, g.Stage = text(ByReason, r.Reason), text(ByCategory, r.Category), text(ByName, r.Name), text(ByStage, r.Stage)
		if grouped[BySchemaVersion] && r.SchemaVersion.Valid {
			v := int(r.SchemaVersion.Int32)
			g.SchemaVersion = &v
		}
		out.Groups = append(out.Groups, g)
	}
	return out, nil
}

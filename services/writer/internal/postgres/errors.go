package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/services/writer/internal/persist"
)

// maxTypeText bounds the category and name kept on an error record, in
// characters: the limit the rules put on valid events, which keeps every
// value well inside a btree index entry.
const maxTypeText = 255

// errorExtras are the columns of error records beyond the envelope's
// basics: what teams filter and group by, and replay lineage.
type errorExtras struct {
	categories, names, replayOf []sql.NullString
	versions                    []sql.NullInt64
}

// extrasOf computes the extra columns of recs, in order.
func extrasOf(recs []contract.Error) errorExtras {
	n := len(recs)
	x := errorExtras{categories: make([]sql.NullString, n), names: make([]sql.NullString, n),
		replayOf: make([]sql.NullString, n), versions: make([]sql.NullInt64, n)}
	for i, r := range recs {
		x.categories[i], x.names[i] = typeOf(r.Payload)
		if r.SchemaVersion > 0 {
			x.versions[i] = sql.NullInt64{Int64: int64(r.SchemaVersion), Valid: true}
		}
		if r.ReplayOf != nil {
			x.replayOf[i] = sql.NullString{String: r.ReplayOf.ErrorID.String(), Valid: true}
		}
	}
	return x
}

// typeOf reads the category and name of an error record's payload when it
// decodes as a JSON object and they are strings; each is NULL otherwise.
// NUL characters (which text columns refuse) become U+FFFD and values are
// cut to maxTypeText characters, so a record is never refused for them.
func typeOf(p contract.Payload) (category, name sql.NullString) {
	b, err := p.Bytes()
	if err != nil {
		return category, name
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(b, &doc) != nil {
		return category, name
	}
	text := func(key string) sql.NullString {
		var s string
		if raw, ok := doc[key]; !ok || json.Unmarshal(raw, &s) != nil {
			return sql.NullString{}
		}
		s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
		if utf8.RuneCountInString(s) > maxTypeText {
			s = string([]rune(s)[:maxTypeText])
		}
		return sql.NullString{String: s, Valid: true}
	}
	return text("category"), text("name")
}

// markReplayedFrom records lineage on events that have none yet: the first
// replay that stored an event is the one it came from.
const markReplayedFrom = `
UPDATE events e SET replayed_from = t.error_id
FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS t(id, error_id, received_at)
WHERE e.id = t.id AND e.received_at = t.received_at AND e.replayed_from IS NULL`

// MarkReplayed sets events.replayed_from for events stored from replays.
// It is idempotent, so a redelivered batch changes nothing.
func (s *Store) MarkReplayed(ctx context.Context, ls []persist.Lineage) error {
	if len(ls) == 0 {
		return nil
	}
	ids, errs, recv := make([]string, len(ls)), make([]string, len(ls)), make([]string, len(ls))
	for i, l := range ls {
		ids[i], errs[i], recv[i] = l.EventID.String(), l.ErrorID.String(), l.ReceivedAt.Format(time.RFC3339Nano)
	}
	if _, err := s.db.ExecContext(ctx, markReplayedFrom, pq.Array(ids), pq.Array(errs), pq.Array(recv)); err != nil {
		return fmt.Errorf("mark %d replayed events: %w", len(ls), err)
	}
	return nil
}

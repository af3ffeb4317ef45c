package postgres

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/writer/internal/persist"
)

// TestErrorRecordsKeepTypeVersionAndLineage: the writer stores an error
// record's category and name (from the payload, when they are strings),
// its schema version and the replay it came from; payloads that are not
// objects, or whose values text columns or indexes cannot hold, never
// make the batch fail.
func TestErrorRecordsKeepTypeVersionAndLineage(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	now := event.Canonical(time.Now())
	replayed := uuid.New()
	rec := func(payload string, version int, replay *contract.Replay) contract.Error {
		return contract.Error{ID: uuid.New(), AppID: testApp, Stage: contract.StageValidator,
			Reasons: event.Reasons{{Code: event.CodeEmptyData, Message: "m"}}, Payload: contract.NewPayload([]byte(payload)),
			ReceivedAt: now, DetectedAt: now, SchemaVersion: version, ReplayOf: replay}
	}
	long := strings.Repeat("é", 3000)
	recs := []contract.Error{
		rec(`{"category":"page interaction","name":"pageview","data":{}}`, 2, &contract.Replay{ErrorID: replayed, Attempt: 1}),
		rec(`{"category":1,"name":"n"}`, 0, nil),
		rec(`not json`, 0, nil),
		rec(`{"category":"a\u0000b","name":"`+long+`"}`, 0, nil),
		{ID: uuid.New(), AppID: testApp, Stage: contract.StageGateway, Reasons: event.Reasons{{Code: event.CodeInvalidJSON, Message: "m"}},
			Payload: contract.NewPayload([]byte{0xff, '{'}), ReceivedAt: now, DetectedAt: now},
	}
	if err := st.InsertErrors(ctx, recs); err != nil {
		t.Fatal(err)
	}
	type row struct {
		Category, Name sql.NullString
		Version        sql.NullInt64 `db:"schema_version"`
		ReplayOf       uuid.NullUUID `db:"replay_of"`
	}
	get := func(id uuid.UUID) row {
		var r row
		if err := db.Get(&r, `SELECT category, name, schema_version, replay_of FROM errors WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := get(recs[0].ID); r.Category.String != "page interaction" || r.Name.String != "pageview" ||
		r.Version.Int64 != 2 || r.ReplayOf.UUID != replayed {
		t.Fatalf("typed record: %+v", r)
	}
	if r := get(recs[1].ID); r.Category.Valid || r.Name.String != "n" || r.Version.Valid || r.ReplayOf.Valid {
		t.Fatalf("a category that is not a string: %+v", r)
	}
	for _, i := range []int{2, 4} {
		if r := get(recs[i].ID); r.Category.Valid || r.Name.Valid {
			t.Fatalf("record %d without an object payload: %+v", i, r)
		}
	}
	if r := get(recs[3].ID); r.Category.String != "a\uFFFDb" || r.Name.String != strings.Repeat("é", maxTypeText) {
		t.Fatalf("NUL and an overlong name: %q %d", r.Category.String, len(r.Name.String))
	}
}

// TestMarkReplayed: an event stored from a replay records the error it came
// from, once; an event stored under the same id from elsewhere is left
// alone.
func TestMarkReplayed(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	session := uuid.New()
	replayed := newEvent(session, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), `{"a":1}`)
	other := newEvent(session, time.Date(2021, 1, 1, 0, 0, 1, 0, time.UTC), `{"a":2}`)
	if _, err := st.InsertEvents(ctx, []event.Event{replayed, other}); err != nil {
		t.Fatal(err)
	}
	first, second := uuid.New(), uuid.New()
	for _, ls := range [][]persist.Lineage{
		{{EventID: replayed.ID, ErrorID: first, ReceivedAt: replayed.ReceivedAt}},
		{{EventID: replayed.ID, ErrorID: second, ReceivedAt: replayed.ReceivedAt}}, // a later replay: the first stored it
		{{EventID: other.ID, ErrorID: second, ReceivedAt: other.ReceivedAt.Add(-time.Hour)}},
	} {
		if err := st.MarkReplayed(ctx, ls); err != nil {
			t.Fatal(err)
		}
	}
	from := func(id uuid.UUID) uuid.NullUUID {
		var u uuid.NullUUID
		if err := db.Get(&u, `SELECT replayed_from FROM events WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		return u
	}
	if got := from(replayed.ID); got.UUID != first {
		t.Fatalf("replayed_from = %v, want %s", got, first)
	}
	if got := from(other.ID); got.Valid {
		t.Fatalf("an event received at another time was marked: %v", got)
	}
}

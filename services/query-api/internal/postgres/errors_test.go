package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// errRec is an error record to insert directly, as the writer stores it.
type errRec struct {
	id             uuid.UUID // zero: a new one
	app            uuid.UUID
	session        *uuid.UUID
	stage          string // default validator
	reasons        event.Reasons
	payload        string
	category, name *string
	version        *int
	replayOf       *uuid.UUID
	received       time.Time // default: detected
	detected       time.Time
}

func addErrors(t *testing.T, db *sqlx.DB, recs ...errRec) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, len(recs))
	for i, r := range recs {
		if r.id == uuid.Nil {
			r.id = uuid.New()
		}
		if r.stage == "" {
			r.stage = contract.StageValidator
		}
		if r.received.IsZero() {
			r.received = r.detected
		}
		codes := make([]string, len(r.reasons))
		for j, x := range r.reasons {
			codes[j] = string(x.Code)
		}
		reasons, _ := json.Marshal(r.reasons)
		db.MustExec(`INSERT INTO errors (id, app_id, session_id, stage, reason_codes, reasons, payload, received_at, detected_at, category, name, schema_version, replay_of)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			r.id, r.app, r.session, r.stage, "{"+strings.Join(codes, ",")+"}", string(reasons), []byte(r.payload), r.received, r.detected,
			r.category, r.name, r.version, r.replayOf)
		ids[i] = r.id
	}
	return ids
}

func reasonsOf(codes ...event.Code) event.Reasons {
	out := make(event.Reasons, len(codes))
	for i, c := range codes {
		out[i] = event.Reason{Code: c, Field: "/" + string(c), Message: string(c) + " message"}
	}
	return out
}

func textPtr(s string) *string { return &s }

func timeAt(t time.Time) *time.Time { return &t }

// TestErrorFiltersAndSummary: the list filters by category, name and
// whether a record was replayed; the summary groups by any combination of
// reason, category, name, schema version and stage, with count, first and
// last seen, scoped to the caller's application and the time range asked.
func TestErrorFiltersAndSummary(t *testing.T) {
	s, db := newStore(t)
	ctx := context.Background()
	mine, theirs := uuid.New(), uuid.New()
	t0 := time.Date(2021, 6, 15, 10, 0, 0, 0, time.UTC)
	v1, v2 := 1, 2
	ids := addErrors(t, db,
		errRec{app: mine, reasons: reasonsOf(event.CodeEmptyData), category: textPtr("page interaction"), name: textPtr("pageview"), version: &v1, detected: t0},
		errRec{app: mine, reasons: reasonsOf(event.CodeEmptyData, event.CodeFutureTimestamp), category: textPtr("page interaction"), name: textPtr("pageview"), version: &v2, detected: t0.Add(time.Minute)},
		errRec{app: mine, reasons: reasonsOf(event.CodeMissingField, event.CodeMissingField), category: textPtr("page interaction"), name: textPtr("cta click"), detected: t0.Add(2 * time.Minute)},
		errRec{app: mine, stage: contract.StageGateway, reasons: reasonsOf(event.CodeInvalidJSON), detected: t0.Add(3 * time.Minute)},
		errRec{app: theirs, reasons: reasonsOf(event.CodeEmptyData), category: textPtr("page interaction"), name: textPtr("pageview"), detected: t0.Add(4 * time.Minute)},
	)
	db.MustExec(`UPDATE errors SET replayed_as = id, replayed_at = now() WHERE id = $1`, ids[0])

	list := func(sc query.Scope, f query.ErrorFilter) []uuid.UUID {
		t.Helper()
		res, _, err := s.Errors(ctx, sc, f, paging.Request{})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]uuid.UUID, len(res))
		for i, e := range res {
			out[i] = e.ID
		}
		return out
	}
	yes, no := true, false
	for _, c := range []struct {
		name string
		sc   query.Scope
		f    query.ErrorFilter
		want []uuid.UUID
	}{
		{"category", query.Scope{AppID: mine}, query.ErrorFilter{Category: "page interaction"}, []uuid.UUID{ids[2], ids[1], ids[0]}},
		{"category and name", query.Scope{AppID: mine}, query.ErrorFilter{Category: "page interaction", Name: "pageview"}, []uuid.UUID{ids[1], ids[0]}},
		{"name across applications", query.Scope{}, query.ErrorFilter{Name: "pageview"}, []uuid.UUID{ids[4], ids[1], ids[0]}},
		{"replayed", query.Scope{}, query.ErrorFilter{Replayed: &yes}, []uuid.UUID{ids[0]}},
		{"not replayed, reason, range", query.Scope{AppID: mine}, query.ErrorFilter{Replayed: &no, Reason: "empty_data", From: &t0, To: timeAt(t0.Add(time.Hour))}, []uuid.UUID{ids[1]}},
	} {
		if got := list(c.sc, c.f); !equalIDs(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	e, err := s.Error(ctx, query.Scope{}, ids[1])
	if err != nil || *e.Category != "page interaction" || *e.Name != "pageview" || *e.SchemaVersion != 2 || e.ReplayedAs != nil {
		t.Fatalf("error record: %v %+v", err, e)
	}
	if e, _ := s.Error(ctx, query.Scope{}, ids[0]); e.ReplayedAs == nil || *e.ReplayedAs != ids[0] || e.ReplayedAt == nil {
		t.Fatalf("replayed record: %+v", e)
	}

	summary := func(sc query.Scope, f query.ErrorFilter, by ...string) []query.ErrorGroup {
		t.Helper()
		res, err := s.Summary(ctx, sc, f, by)
		if err != nil {
			t.Fatal(err)
		}
		if res.Truncated {
			t.Fatal("truncated")
		}
		return res.Groups
	}
	// By reason (the default), mine only: a record with two reasons counts
	// in both groups, with one of a repeated code once.
	got := summary(query.Scope{AppID: mine}, query.ErrorFilter{})
	want := []struct {
		reason      string
		count       int64
		first, last time.Time
	}{
		{"empty_data", 2, t0, t0.Add(time.Minute)},
		{"invalid_json", 1, t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},
		{"missing_field", 1, t0.Add(2 * time.Minute), t0.Add(2 * time.Minute)},
		{"future_timestamp", 1, t0.Add(time.Minute), t0.Add(time.Minute)},
	}
	if len(got) != len(want) {
		t.Fatalf("by reason: %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if *g.Reason != w.reason || g.Count != w.count || !g.FirstSeen.Equal(w.first) || !g.LastSeen.Equal(w.last) || g.Category != nil {
			t.Errorf("group %d: %s %d %s %s, want %+v", i, *g.Reason, g.Count, g.FirstSeen, g.LastSeen, w)
		}
	}
	// By category and name, for an admin, over a range: the gateway's
	// record has neither.
	got = summary(query.Scope{}, query.ErrorFilter{From: timeAt(t0.Add(time.Minute))}, query.ByCategory, query.ByName)
	type cn struct {
		category, name string
		count          int64
	}
	var pairs []cn
	for _, g := range got {
		c := cn{count: g.Count}
		if g.Category != nil {
			c.category, c.name = *g.Category, *g.Name
		}
		if g.Reason != nil {
			t.Errorf("reason not grouped: %+v", g)
		}
		pairs = append(pairs, c)
	}
	wantPairs := []cn{{"page interaction", "pageview", 2}, {"", "", 1}, {"page interaction", "cta click", 1}}
	if len(pairs) != len(wantPairs) {
		t.Fatalf("by category, name: %+v", pairs)
	}
	for i := range wantPairs {
		if pairs[i] != wantPairs[i] {
			t.Errorf("by category, name: %+v, want %+v", pairs, wantPairs)
			break
		}
	}
	// By schema version and reason, for one category.
	got = summary(query.Scope{AppID: mine}, query.ErrorFilter{Category: "page interaction", Name: "pageview"}, query.BySchemaVersion, query.ByReason)
	wantVersions := []struct {
		version int
		reason  string
	}{{2, "empty_data"}, {2, "future_timestamp"}, {1, "empty_data"}}
	if len(got) != len(wantVersions) {
		t.Fatalf("by schema version, reason: %+v", got)
	}
	for i, w := range wantVersions {
		if g := got[i]; g.SchemaVersion == nil || *g.SchemaVersion != w.version || *g.Reason != w.reason || g.Count != 1 || g.Category != nil {
			t.Errorf("group %d: %+v, want %+v", i, g, w)
		}
	}
	if _, err := s.Summary(ctx, query.Scope{}, query.ErrorFilter{}, []string{"colour"}); !errors.Is(err, query.ErrBadGrouping) {
		t.Fatalf("unknown grouping: %v", err)
	}
	if _, err := s.Summary(ctx, query.Scope{}, query.ErrorFilter{}, []string{query.ByName, query.ByName}); !errors.Is(err, query.ErrBadGrouping) {
		t.Fatalf("repeated grouping: %v", err)
	}
}

func equalIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// replayPub is a Kafka stand-in for replays: it records what it publishes,
// or fails.
type replayPub struct {
	fail error
	msgs []contract.Message
}

func (p *replayPub) Publish(_ context.Context, msgs ...contract.Message) error {
	if p.fail != nil {
		return p.fail
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

func (p *replayPub) raw(t *testing.T, i int) contract.RawEvent {
	t.Helper()
	var r contract.RawEvent
	if err := contract.Decode(p.msgs[i].Value, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func newReplayer(t *testing.T) (*query.Replayer, *replayPub, *sqlx.DB) {
	t.Helper()
	_, db := newStore(t)
	pub := &replayPub{}
	r, err := query.NewReplayer(storeOn(t, db), event.DefaultRules(), pub, "eye.events.raw.v1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r, pub, db
}

const replaySession = "9AB1B579-7021-4E0C-8EA1-2AC9F52F3058" // upper case: the key is canonical

func replayDoc(data, extra string) string {
	return `{"session_id": "` + replaySession + `", "category": "page interaction", "name": "pageview", "data": ` + data +
		`, "timestamp": "2021-06-15 00:00:00"` + extra + `}`
}

// TestReplayOne: a dry run says whether the original or a corrected
// payload passes, publishing nothing; a replay publishes the raw event the
// gateway would have written, under the record's id, with the attempt, and
// records replayed_as; a payload that still fails publishes nothing.
func TestReplayOne(t *testing.T) {
	r, pub, db := newReplayer(t)
	ctx := context.Background()
	app := uuid.New()
	received := time.Date(2021, 6, 15, 0, 0, 1, 123456000, time.UTC)
	id := addErrors(t, db, errRec{app: app, reasons: reasonsOf(event.CodeEmptyData), payload: replayDoc(`{}`, ""),
		received: received, detected: received.Add(time.Second)})[0]
	fixed := json.RawMessage(replayDoc(`{"host": "h", "path": "/"}`, ""))

	rep, err := r.ReplayOne(ctx, query.Scope{}, id, nil, true)
	if err != nil || !rep.DryRun || rep.Matched != 1 || rep.Passing != 0 || rep.Failing != 1 || rep.Published != 0 ||
		len(rep.Failures) != 1 || rep.Failures[0].Code != event.CodeEmptyData || rep.Results[0].Passes || rep.Results[0].EventID != id {
		t.Fatalf("dry run of the original: %v %+v", err, rep)
	}
	rep, err = r.ReplayOne(ctx, query.Scope{}, id, fixed, true)
	if err != nil || rep.Passing != 1 || !rep.Results[0].Passes || len(rep.Results[0].Reasons) != 0 || len(pub.msgs) != 0 {
		t.Fatalf("dry run of the fix: %v %+v", err, rep)
	}
	if _, err := r.ReplayOne(ctx, query.Scope{}, id, nil, false); !errors.Is(err, query.ErrReplayInvalid) || !strings.Contains(err.Error(), "empty_data") || len(pub.msgs) != 0 {
		t.Fatalf("replaying what still fails: %v (%d published)", err, len(pub.msgs))
	}
	if _, err := r.ReplayOne(ctx, query.Scope{AppID: uuid.New()}, id, fixed, false); !errors.Is(err, query.ErrNotFound) {
		t.Fatalf("another application's record: %v", err)
	}

	for attempt := 1; attempt <= 2; attempt++ {
		rep, err = r.ReplayOne(ctx, query.Scope{}, id, fixed, false)
		if err != nil || rep.DryRun || rep.Published != 1 || !rep.Results[0].Published || rep.Results[0].Attempt != attempt {
			t.Fatalf("replay %d: %v %+v", attempt, err, rep)
		}
		m := pub.msgs[attempt-1]
		raw := pub.raw(t, attempt-1)
		body, _ := raw.Payload.Bytes()
		if m.Topic != "eye.events.raw.v1" || string(m.Key) != strings.ToLower(replaySession) || raw.EventID != id || raw.AppID != app ||
			!raw.ReceivedAt.Equal(received) || string(body) != string(fixed) ||
			raw.ReplayOf == nil || raw.ReplayOf.ErrorID != id || raw.ReplayOf.Attempt != attempt {
			t.Fatalf("replay %d published %s %s %s", attempt, m.Topic, m.Key, m.Value)
		}
		e, err := storeOn(t, db).Error(ctx, query.Scope{}, id)
		if err != nil || e.ReplayedAs == nil || *e.ReplayedAs != id || e.ReplayedAt == nil || e.ReplayAttempts != attempt {
			t.Fatalf("after replay %d: %v %+v", attempt, err, e)
		}
	}

	// Kafka down: nothing recorded as replayed (the attempt is counted).
	other := addErrors(t, db, errRec{app: app, reasons: reasonsOf(event.CodeEmptyData), payload: replayDoc(`{}`, ""), detected: received})[0]
	pub.fail = errors.New("broker down")
	if _, err := r.ReplayOne(ctx, query.Scope{}, other, fixed, false); !errors.Is(err, query.ErrReplayNotPublished) {
		t.Fatalf("publish failure: %v", err)
	}
	if e, _ := storeOn(t, db).Error(ctx, query.Scope{}, other); e.ReplayedAs != nil {
		t.Fatalf("unpublished replay recorded: %+v", e)
	}
}

// TestReplayEventIDs: a record of a failed replay replays as the event its
// chain started from; an invalid_envelope record as a UUIDv5 of its id;
// one whose application is unknown is not replayed.
func TestReplayEventIDs(t *testing.T) {
	r, pub, db := newReplayer(t)
	ctx := context.Background()
	app := uuid.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	first := addErrors(t, db, errRec{app: app, reasons: reasonsOf(event.CodeEmptyData), payload: replayDoc(`{}`, ""), detected: now})[0]
	// Its replay failed again (as the validator records it), and so did the
	// replay of that record.
	second := contract.ErrorID(first, &contract.Replay{ErrorID: first, Attempt: 1})
	third := contract.ErrorID(first, &contract.Replay{ErrorID: second, Attempt: 1})
	addErrors(t, db,
		errRec{id: second, app: app, reasons: reasonsOf(event.CodeEmptyData), payload: replayDoc(`{}`, ""), replayOf: &first, detected: now},
		errRec{id: third, app: app, reasons: reasonsOf(event.CodeEmptyData), payload: replayDoc(`{}`, ""), replayOf: &second, detected: now})
	envelope := addErrors(t, db, errRec{app: app, reasons: reasonsOf(event.CodeInvalidEnvelope), payload: `garbage`, detected: now})[0]
	orphan := addErrors(t, db, errRec{app: uuid.Nil, reasons: reasonsOf(event.CodeInvalidEnvelope), payload: `garbage`, detected: now})[0]

	fixed := json.RawMessage(replayDoc(`{"a": 1}`, ""))
	for _, c := range []struct {
		id, want uuid.UUID
	}{{third, first}, {second, first}, {envelope, uuid.NewSHA1(uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://the-eye/replay")), envelope[:])}} {
		rep, err := r.ReplayOne(ctx, query.Scope{}, c.id, fixed, false)
		if err != nil || rep.Results[0].EventID != c.want || pub.raw(t, len(pub.msgs)-1).EventID != c.want {
			t.Fatalf("replay of %s: %v %+v, want event %s", c.id, err, rep, c.want)
		}
	}
	rep, err := r.ReplayOne(ctx, query.Scope{}, orphan, fixed, true)
	if err != nil || rep.Passing != 0 || rep.Failures[0].Code != event.CodeUnknownApplication {
		t.Fatalf("record of no application: %v %+v", err, rep)
	}
}

// TestBulkReplayAfterASchemaFix: records that failed a schema are replayed
// once a new version accepts them; the dry run counts them and groups why
// the others still fail; the replay publishes only those that pass, and a
// second one finds the rest.
func TestBulkReplayAfterASchemaFix(t *testing.T) {
	r, pub, db := newReplayer(t)
	ctx := context.Background()
	app, strictApp := uuid.New(), uuid.New()
	db.MustExec(`INSERT INTO applications (id, name, strict_types) VALUES ($1, 'strict', true)`, strictApp)
	db.MustExec(`INSERT INTO event_schemas (category, name, version, schema, published_at) VALUES
		('page interaction', 'pageview', 1, '{"type": "object", "required": ["host", "path"]}', now())`)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	violation := event.Reasons{{Code: "schema_violation", Field: "/data/path", Message: "missing property 'path'"}}
	var violations []uuid.UUID
	for i := range 3 {
		violations = append(violations, addErrors(t, db, errRec{app: app, reasons: violation, payload: replayDoc(`{"host": "h"}`, ""),
			category: textPtr("page interaction"), name: textPtr("pageview"), detected: t0.Add(time.Duration(i) * time.Second)})[0])
	}
	empty := addErrors(t, db, errRec{app: app, reasons: reasonsOf(event.CodeEmptyData), payload: replayDoc(`{}`, ""), detected: t0.Add(10 * time.Second)})[0]
	untyped := addErrors(t, db, errRec{app: strictApp, reasons: reasonsOf("unknown_event_type"),
		payload:  `{"session_id": "` + replaySession + `", "category": "x", "name": "y", "data": {"a": 1}, "timestamp": "2021-06-15 00:00:00"}`,
		detected: t0.Add(11 * time.Second)})[0]
	notReplayed := false
	all := query.ErrorFilter{Replayed: &notReplayed}

	rep, err := r.ReplayMatching(ctx, query.Scope{}, all, 0, true)
	if err != nil || rep.Matched != 5 || rep.Passing != 0 || rep.Failing != 5 || rep.More {
		t.Fatalf("dry run before the fix: %v %+v", err, rep)
	}
	// The record with empty data fails the schema too, as the validator
	// would say.
	if f := rep.Failures[0]; f.Code != "schema_violation" || f.Field != "/data/path" || f.Count != 4 || len(f.ErrorIDs) != 4 {
		t.Fatalf("failures before the fix: %+v", rep.Failures)
	}
	if !strings.Contains(strings.Join(rep.Checked, ","), query.CheckSchemas) {
		t.Fatalf("checks: %v", rep.Checked)
	}

	// The fix: version 2 makes path optional.
	db.MustExec(`INSERT INTO event_schemas (category, name, version, schema, published_at) VALUES
		('page interaction', 'pageview', 2, '{"type": "object", "required": ["host"]}', now())`)
	rep, err = r.ReplayMatching(ctx, query.Scope{}, all, 0, true)
	codes := map[event.Code]int{}
	for _, f := range rep.Failures {
		codes[f.Code] = f.Count
	}
	if err != nil || rep.Matched != 5 || rep.Passing != 3 || rep.Failing != 2 || rep.Published != 0 || len(pub.msgs) != 0 ||
		codes[event.CodeEmptyData] != 1 || codes["unknown_event_type"] != 1 {
		t.Fatalf("dry run after the fix: %v %+v", err, rep)
	}
	rep, err = r.ReplayMatching(ctx, query.Scope{}, all, 2, true)
	if err != nil || rep.Matched != 2 || !rep.More {
		t.Fatalf("dry run with a limit: %v %+v", err, rep)
	}

	rep, err = r.ReplayMatching(ctx, query.Scope{}, query.ErrorFilter{Replayed: &notReplayed, Category: "page interaction"}, 0, false)
	if err != nil || rep.Published != 3 || rep.Passing != 3 || len(pub.msgs) != 3 {
		t.Fatalf("replay: %v %+v", err, rep)
	}
	for i, id := range violations { // oldest first
		if raw := pub.raw(t, i); raw.EventID != id || raw.ReplayOf.ErrorID != id || raw.ReplayOf.Attempt != 1 {
			t.Fatalf("published %d: %+v", i, raw)
		}
	}
	rep, err = r.ReplayMatching(ctx, query.Scope{}, all, 0, false)
	if err != nil || rep.Matched != 2 || rep.Published != 0 || len(pub.msgs) != 3 {
		t.Fatalf("second replay: %v %+v", err, rep)
	}
	for _, id := range []uuid.UUID{empty, untyped} {
		if e, _ := storeOn(t, db).Error(ctx, query.Scope{}, id); e.ReplayedAs != nil || e.ReplayAttempts != 0 {
			t.Fatalf("a record that still fails was replayed: %+v", e)
		}
	}
}

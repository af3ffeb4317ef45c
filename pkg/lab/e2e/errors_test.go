package e2e

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
)

// errorView is an error record as GET /errors shows it, with its type and
// replay lineage.
type errorView struct {
	ID        string  `json:"id"`
	SessionID *string `json:"session_id"`
	Stage     string  `json:"stage"`
	Reasons   []struct {
		Code  string `json:"code"`
		Field string `json:"field"`
	} `json:"reasons"`
	Category       *string    `json:"category"`
	Name           *string    `json:"name"`
	SchemaVersion  *int       `json:"schema_version"`
	ReplayOf       *string    `json:"replay_of"`
	ReplayAttempts int        `json:"replay_attempts"`
	ReplayedAs     *string    `json:"replayed_as"`
	ReplayedAt     *time.Time `json:"replayed_at"`
}

func (e errorView) codes() string {
	var out []string
	for _, r := range e.Reasons {
		out = append(out, r.Code+" "+r.Field)
	}
	return strings.Join(out, ", ")
}

// replayedEvent is a stored event with its lineage.
type replayedEvent struct {
	storedEvent
	ReplayedFrom *string `json:"replayed_from"`
}

type errorGroup struct {
	Reason        *string   `json:"reason"`
	Category      *string   `json:"category"`
	Name          *string   `json:"name"`
	SchemaVersion *int      `json:"schema_version"`
	Count         int       `json:"count"`
	FirstSeen     time.Time `json:"first_seen"`
	LastSeen      time.Time `json:"last_seen"`
}

type replayReport struct {
	DryRun    bool `json:"dry_run"`
	Matched   int  `json:"matched"`
	Passing   int  `json:"passing"`
	Failing   int  `json:"failing"`
	Published int  `json:"published"`
	More      bool `json:"more"`
	Failures  []struct {
		Code     string   `json:"code"`
		Field    string   `json:"field"`
		Count    int      `json:"count"`
		ErrorIDs []string `json:"error_ids"`
	} `json:"failures"`
	Checked []string `json:"checked"`
	Results []struct {
		EventID   string `json:"event_id"`
		Passes    bool   `json:"passes"`
		Published bool   `json:"published"`
		Attempt   int    `json:"attempt"`
	} `json:"results"`
}

func orNull(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// TestErrorsSeenAndReplayed drives error records through the running
// pipeline: bad events listed by category and name and summarised; a
// replay with a corrected payload landing once however often it is
// replayed, with lineage both ways; a replay that fails again keeping both
// records; a bulk replay after a schema fix (dry run, replay, again).
func TestErrorsSeenAndReplayed(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	q := p.query

	post := func(t *testing.T, key string, ev map[string]any) string {
		t.Helper()
		res := do(t, "POST", p.gateway+"/events/", key, ev)
		var rc receipt
		res.json(t, &rc)
		if res.status != http.StatusAccepted || rc.Status != "accepted" {
			t.Fatalf("POST /events/: %d %s", res.status, res.body)
		}
		return rc.ID
	}
	ev := func(session, category, name string, data map[string]any, ts string) map[string]any {
		e := map[string]any{"session_id": session, "category": category, "name": name, "data": data}
		if ts != "" {
			e["timestamp"] = ts
		}
		return e
	}
	errorOf := func(t *testing.T, id string) errorView {
		t.Helper()
		var e errorView
		p.eventually(15*time.Second, "error record "+id, func() bool {
			res := do(t, "GET", q+"/errors/"+id, adminKey, nil)
			if res.status == http.StatusOK {
				res.json(t, &e)
			}
			return res.status == http.StatusOK
		})
		return e
	}
	eventOf := func(t *testing.T, id string) replayedEvent {
		t.Helper()
		var e replayedEvent
		p.eventually(15*time.Second, "event "+id, func() bool {
			res := do(t, "GET", q+"/events/"+id, adminKey, nil)
			if res.status == http.StatusOK {
				res.json(t, &e)
			}
			return res.status == http.StatusOK
		})
		return e
	}
	// settled posts a good event to session and waits until it is stored:
	// whatever was published to the session's partition before it has been
	// processed by then. It returns the session's stored events.
	settled := func(t *testing.T, session string) []replayedEvent {
		t.Helper()
		eventOf(t, post(t, writeKey, ev(session, "page interaction", "pageview", map[string]any{"path": "/sentinel"}, "2021-06-15 01:00:00")))
		var got page[replayedEvent]
		do(t, "GET", q+"/events/?limit=1000&session="+session, adminKey, nil).json(t, &got)
		return got.Results
	}
	replay := func(t *testing.T, path string, body any, want int) replayReport {
		t.Helper()
		res := do(t, "POST", q+path, adminKey, body)
		var rep replayReport
		res.json(t, &rep)
		if res.status != want {
			t.Fatalf("POST %s: %d %s, want %d", path, res.status, res.body, want)
		}
		return rep
	}

	session := uuid.NewString()
	var empty, future, missing string
	t.Run("bad events are listed by category and name and summarised", func(t *testing.T) {
		good := post(t, writeKey, ev(session, "page interaction", "pageview", map[string]any{"path": "/"}, "2021-06-15 00:00:00"))
		empty = post(t, writeKey, ev(session, "page interaction", "pageview", map[string]any{}, "2021-06-15 00:00:01"))
		future = post(t, writeKey, ev(session, "form interaction", "submit", map[string]any{"a": 1}, "2099-01-01 00:00:00"))
		missing = post(t, writeKey, ev(session, "page interaction", "cta click", map[string]any{"a": 1}, ""))
		eventOf(t, good)
		for id, want := range map[string]string{empty: "empty_data /data", future: "future_timestamp /timestamp", missing: "missing_field /timestamp"} {
			if e := errorOf(t, id); e.codes() != want || e.Category == nil || e.Name == nil || e.ReplayedAs != nil {
				t.Fatalf("record %s: %s, category %s, name %s", id, e.codes(), orNull(e.Category), orNull(e.Name))
			}
		}
		var list page[errorView]
		do(t, "GET", q+"/errors/?session="+session+"&category="+url.QueryEscape("page interaction"), adminKey, nil).json(t, &list)
		if len(list.Results) != 2 || list.Results[0].ID != missing || list.Results[1].ID != empty {
			t.Fatalf("by category: %+v", list.Results)
		}
		do(t, "GET", q+"/errors/?session="+session+"&category="+url.QueryEscape("page interaction")+"&name=pageview", adminKey, nil).json(t, &list)
		if len(list.Results) != 1 || list.Results[0].ID != empty {
			t.Fatalf("by category and name: %+v", list.Results)
		}

		var sum struct{ Groups []errorGroup }
		do(t, "GET", q+"/errors/summary?session="+session, adminKey, nil).json(t, &sum)
		var reasons []string
		for _, g := range sum.Groups {
			reasons = append(reasons, orNull(g.Reason))
			if g.Count != 1 || g.FirstSeen.IsZero() || g.LastSeen.Before(g.FirstSeen) || g.Category != nil {
				t.Errorf("group %+v", g)
			}
		}
		slices.Sort(reasons)
		if strings.Join(reasons, ",") != "empty_data,future_timestamp,missing_field" {
			t.Fatalf("summary by reason: %v", reasons)
		}
		do(t, "GET", q+"/errors/summary?by=category,name&session="+session, adminKey, nil).json(t, &sum)
		if len(sum.Groups) != 3 || sum.Groups[0].Reason != nil {
			t.Fatalf("summary by category and name: %+v", sum.Groups)
		}
	})

	t.Run("a corrected replay lands once, with lineage both ways", func(t *testing.T) {
		fixed := ev(session, "page interaction", "pageview", map[string]any{"path": "/fixed"}, "2021-06-15 00:00:01")
		rep := replay(t, "/errors/"+empty+"/replay?dry_run=true", nil, http.StatusOK)
		if rep.Failing != 1 || rep.Failures[0].Code != "empty_data" {
			t.Fatalf("dry run of the original: %+v", rep)
		}
		rep = replay(t, "/errors/"+empty+"/replay?dry_run=true", map[string]any{"payload": fixed}, http.StatusOK)
		if rep.Passing != 1 || !rep.Results[0].Passes || rep.Results[0].Published {
			t.Fatalf("dry run of the fix: %+v", rep)
		}
		rep = replay(t, "/errors/"+empty+"/replay", map[string]any{"payload": fixed}, http.StatusAccepted)
		if rep.Published != 1 || rep.Results[0].EventID != empty || rep.Results[0].Attempt != 1 {
			t.Fatalf("replay: %+v", rep)
		}
		e := eventOf(t, empty)
		if orNull(e.ReplayedFrom) != empty || e.Data["path"] != "/fixed" || e.SessionID != session {
			t.Fatalf("replayed event %+v from %s", e, orNull(e.ReplayedFrom))
		}
		if r := errorOf(t, empty); orNull(r.ReplayedAs) != empty || r.ReplayAttempts != 1 || r.ReplayedAt == nil {
			t.Fatalf("replayed record %+v", r)
		}

		// Again: attempt 2, and still one event.
		if rep := replay(t, "/errors/"+empty+"/replay/", map[string]any{"payload": fixed}, http.StatusAccepted); rep.Results[0].Attempt != 2 {
			t.Fatalf("second replay: %+v", rep)
		}
		events := settled(t, session)
		n := 0
		for _, e := range events {
			if e.ID == empty {
				n++
			}
		}
		if n != 1 || len(events) != 3 || sessionCount(t, p, adminKey, session) != 3 {
			t.Fatalf("after two replays: %d copies, %d events, session count %d", n, len(events), sessionCount(t, p, adminKey, session))
		}

		// What still fails is not published.
		res := do(t, "POST", q+"/errors/"+future+"/replay", adminKey, nil)
		if res.status != http.StatusUnprocessableEntity || res.errorCode(t) != "replay_invalid" {
			t.Fatalf("replaying a future timestamp: %d %s", res.status, res.body)
		}
	})

	t.Run("a replay that fails again keeps both records", func(t *testing.T) {
		strict := newApp(t, p, nil, 0, 0, true) // strict sessions: the writer refuses unregistered ones
		s2 := uuid.NewString()
		bad := post(t, strict.writeKey, ev(s2, "page interaction", "pageview", map[string]any{}, "2021-06-15 00:00:00"))
		errorOf(t, bad)
		fixed := ev(s2, "page interaction", "pageview", map[string]any{"path": "/"}, "2021-06-15 00:00:00")
		replay(t, "/errors/"+bad+"/replay", map[string]any{"payload": fixed}, http.StatusAccepted)

		again := contract.ErrorID(uuid.MustParse(bad), &contract.Replay{ErrorID: uuid.MustParse(bad), Attempt: 1}).String()
		r := errorOf(t, again)
		if r.codes() != "unknown_session /session_id" || r.Stage != "writer" || orNull(r.ReplayOf) != bad {
			t.Fatalf("the replay's own record: %+v", r)
		}
		if orig := errorOf(t, bad); orig.codes() != "empty_data /data" || orNull(orig.ReplayedAs) != bad {
			t.Fatalf("the original record: %+v", orig)
		}
		var list page[errorView]
		do(t, "GET", q+"/errors/?session="+s2, adminKey, nil).json(t, &list)
		if len(list.Results) != 2 {
			t.Fatalf("records of the session: %+v", list.Results)
		}

		// Registered, the session accepts it: replaying the writer's record
		// stores the event under the id it always had.
		if res := do(t, "POST", p.gateway+"/sessions/", strict.writeKey, map[string]any{"id": s2}); res.status != http.StatusCreated {
			t.Fatalf("register: %d %s", res.status, res.body)
		}
		if rep := replay(t, "/errors/"+again+"/replay", nil, http.StatusAccepted); rep.Results[0].EventID != bad {
			t.Fatalf("replay of the replay's record: %+v", rep)
		}
		if e := eventOf(t, bad); orNull(e.ReplayedFrom) != again {
			t.Fatalf("event %+v from %s", e, orNull(e.ReplayedFrom))
		}
	})

	t.Run("bulk replay after a schema fix: dry run, replay, again without duplicates", func(t *testing.T) {
		s3 := uuid.NewString()
		addSchema := func(t *testing.T, schema string) {
			t.Helper()
			res := do(t, "POST", q+"/admin/schemas", adminKey, `{"category": "e2e replay", "name": "pay", "schema": `+schema+`}`)
			var rec schemaRecord
			res.json(t, &rec)
			// published_at may still be null: the schema is stored, and query-api
			// publishes it to the validators as soon as the schemas topic is up.
			if res.status != http.StatusCreated {
				t.Fatalf("add schema: %d %s", res.status, res.body)
			}
			p.eventually(15*time.Second, "the validator holds the schema", func() bool {
				var held page[schemaRecord]
				do(t, "GET", p.validate+"/schemas", "", nil).json(t, &held)
				return slices.ContainsFunc(held.Results, func(r schemaRecord) bool {
					return r.Category == "e2e replay" && r.Version == rec.Version
				})
			})
		}
		addSchema(t, `{"type": "object", "required": ["amount"]}`)
		var violations []string
		for i := range 3 {
			violations = append(violations, post(t, writeKey, ev(s3, "e2e replay", "pay", map[string]any{"currency": "EUR", "n": i}, "2021-06-15 00:00:00")))
		}
		stillBad := post(t, writeKey, ev(s3, "e2e replay", "pay", map[string]any{}, "2021-06-15 00:00:00"))
		for _, id := range violations {
			if e := errorOf(t, id); e.codes() != "schema_violation /data/amount" || e.SchemaVersion == nil || *e.SchemaVersion != 1 {
				t.Fatalf("violation %+v", e)
			}
		}
		errorOf(t, stillBad)
		var sum struct{ Groups []errorGroup }
		do(t, "GET", q+"/errors/summary?by=schema_version,reason&category="+url.QueryEscape("e2e replay"), adminKey, nil).json(t, &sum)
		if g := sum.Groups[0]; orNull(g.Reason) != "schema_violation" || g.SchemaVersion == nil || *g.SchemaVersion != 1 || g.Count != 4 {
			t.Fatalf("summary by schema version: %+v", sum.Groups)
		}

		filter := "category=" + url.QueryEscape("e2e replay") + "&name=pay"
		if rep := replay(t, "/errors/replay?dry_run=true&"+filter, nil, http.StatusOK); rep.Matched != 4 || rep.Passing != 0 {
			t.Fatalf("dry run before the fix: %+v", rep)
		}
		addSchema(t, `{"type": "object", "required": ["currency"]}`) // the fix: version 2
		rep := replay(t, "/errors/replay?dry_run=true&"+filter, nil, http.StatusOK)
		codes := map[string]int{}
		for _, f := range rep.Failures {
			codes[f.Code+" "+f.Field] = f.Count
		}
		if rep.Matched != 4 || rep.Passing != 3 || rep.Failing != 1 || rep.Published != 0 ||
			codes["empty_data /data"] != 1 || codes["schema_violation /data/currency"] != 1 {
			t.Fatalf("dry run after the fix: %+v", rep)
		}

		if rep := replay(t, "/errors/replay?"+filter, nil, http.StatusAccepted); rep.Published != 3 || rep.Failing != 1 {
			t.Fatalf("replay: %+v", rep)
		}
		for _, id := range violations {
			if e := eventOf(t, id); orNull(e.ReplayedFrom) != id {
				t.Fatalf("event %s replayed from %s", id, orNull(e.ReplayedFrom))
			}
			if r := errorOf(t, id); orNull(r.ReplayedAs) != id {
				t.Fatalf("record %+v", r)
			}
		}
		// Again: only what still fails is left; and replaying the replayed
		// ones once more stores nothing twice.
		if rep := replay(t, "/errors/replay?"+filter, nil, http.StatusAccepted); rep.Matched != 1 || rep.Published != 0 {
			t.Fatalf("second replay: %+v", rep)
		}
		if rep := replay(t, "/errors/replay?replayed=true&"+filter, nil, http.StatusAccepted); rep.Published != 3 {
			t.Fatalf("replaying the replayed: %+v", rep)
		}
		if events := settled(t, s3); len(events) != 4 || sessionCount(t, p, adminKey, s3) != 4 {
			t.Fatalf("after replaying twice: %d events, session count %d", len(events), sessionCount(t, p, adminKey, s3))
		}
	})
}

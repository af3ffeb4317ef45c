// Package e2e runs The Eye's four services as processes against a real
// Kafka-protocol broker and a real Postgres, and checks the contract from
// the outside: HTTP in, query out, bad events as error records.
package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/devstack"
)

type receipt struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

type storedEvent struct {
	ID        string         `json:"id"`
	SessionID string         `json:"session_id"`
	Category  string         `json:"category"`
	Name      string         `json:"name"`
	Data      map[string]any `json:"data"`
	Timestamp time.Time      `json:"timestamp"`
	Version   int            `json:"version"`
}

type storedError struct {
	ID        string  `json:"id"`
	SessionID *string `json:"session_id"`
	Stage     string  `json:"stage"`
	Reasons   []struct {
		Code  string `json:"code"`
		Field string `json:"field"`
	} `json:"reasons"`
	Payload struct {
		Encoding string `json:"encoding"`
		Data     string `json:"data"`
	} `json:"payload"`
}

type sessionRow struct {
	ID           string     `json:"id"`
	EventCount   int        `json:"event_count"`
	RegisteredAt *time.Time `json:"registered_at"`
	FirstEventAt *time.Time `json:"first_event_at"`
	LastEventAt  *time.Time `json:"last_event_at"`
}

type page[T any] struct {
	Results []T     `json:"results"`
	Next    *string `json:"next"`
}

func seedEvent(session string, ts string) map[string]any {
	return map[string]any{
		"session":   map[string]any{"id": session},
		"category":  "page interaction",
		"name":      "pageview",
		"data":      map[string]any{"host": "www.consumeraffairs.com", "path": "/"},
		"timestamp": ts,
	}
}

func TestPipeline(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})

	t.Run("seed flow: register a session, post an event, query it", func(t *testing.T) {
		res := do(t, "POST", p.gateway+"/sessions/", writeKey, nil)
		if res.status != http.StatusCreated {
			t.Fatalf("POST /sessions/: %d %s", res.status, res.body)
		}
		var sess receipt
		res.json(t, &sess)
		res = do(t, "POST", p.gateway+"/events/", writeKey, seedEvent(sess.ID, "2021-06-15 00:00:00"))
		if res.status != http.StatusAccepted {
			t.Fatalf("POST /events/: %d %s", res.status, res.body)
		}
		var rc receipt
		res.json(t, &rc)
		if rc.Status != "accepted" || uuid.MustParse(rc.ID).Version() != 7 {
			t.Fatalf("receipt %+v, want accepted with a UUIDv7", rc)
		}
		var got page[storedEvent]
		p.eventually(10*time.Second, "the event is queryable", func() bool {
			do(t, "GET", p.query+"/events/?session="+sess.ID, adminKey, nil).json(t, &got)
			return len(got.Results) == 1
		})
		e := got.Results[0]
		if e.ID != rc.ID || e.Category != "page interaction" || e.Name != "pageview" || e.Data["host"] != "www.consumeraffairs.com" ||
			!e.Timestamp.Equal(time.Date(2021, 6, 15, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("stored %+v", e)
		}
		var s sessionRow
		p.eventually(10*time.Second, "the session shows the event", func() bool {
			do(t, "GET", p.query+"/sessions/"+sess.ID, adminKey, nil).json(t, &s)
			return s.EventCount == 1
		})
		if s.RegisteredAt == nil || s.FirstEventAt == nil || !s.FirstEventAt.Equal(e.Timestamp) {
			t.Fatalf("session %+v", s)
		}
	})

	t.Run("both session shapes, routes with and without a trailing slash, no redirects", func(t *testing.T) {
		session := uuid.NewString()
		flat := seedEvent(session, "2021-06-15T10:00:00Z")
		delete(flat, "session")
		flat["session_id"] = session
		for _, path := range []string{"/events", "/events/"} {
			if res := do(t, "POST", p.gateway+path, writeKey, flat); res.status != http.StatusAccepted {
				t.Fatalf("POST %s: %d %s", path, res.status, res.body)
			}
		}
		p.eventually(10*time.Second, "both events are queryable on both routes", func() bool {
			var a, b page[storedEvent]
			ra := do(t, "GET", p.query+"/events?session="+session, adminKey, nil)
			rb := do(t, "GET", p.query+"/events/?session="+session, adminKey, nil)
			if ra.status != http.StatusOK || rb.status != http.StatusOK {
				t.Fatalf("GET /events: %d, /events/: %d", ra.status, rb.status)
			}
			ra.json(t, &a)
			rb.json(t, &b)
			return len(a.Results) == 2 && len(b.Results) == 2
		})
	})

	t.Run("a batch gets receipts in input order and every event lands", func(t *testing.T) {
		session := uuid.NewString()
		batch := []any{
			seedEvent(session, "2021-06-15 00:00:01"),
			seedEvent(session, "2021-06-15 00:00:02"),
			42,
			seedEvent(session, "2021-06-15 00:00:03"),
		}
		res := do(t, "POST", p.gateway+"/events/", writeKey, batch)
		if res.status != http.StatusAccepted {
			t.Fatalf("POST batch: %d %s", res.status, res.body)
		}
		var out struct{ Events []receipt }
		res.json(t, &out)
		want := []string{"accepted", "accepted", "rejected", "accepted"}
		if len(out.Events) != len(want) {
			t.Fatalf("receipts %+v", out.Events)
		}
		for i, r := range out.Events {
			if r.Status != want[i] {
				t.Fatalf("receipt %d = %s, want %s", i, r.Status, want[i])
			}
		}
		var got page[storedEvent]
		p.eventually(10*time.Second, "three events stored", func() bool {
			do(t, "GET", p.query+"/events/?ordering=timestamp&session="+session, adminKey, nil).json(t, &got)
			return len(got.Results) == 3
		})
		for i, idx := range []int{0, 1, 3} {
			if got.Results[i].ID != out.Events[idx].ID {
				t.Fatalf("event %d is %s, want %s", i, got.Results[i].ID, out.Events[idx].ID)
			}
		}
		p.eventually(10*time.Second, "the non-object is an error record", func() bool {
			return do(t, "GET", p.query+"/errors/"+out.Events[2].ID, adminKey, nil).status == http.StatusOK
		})
	})

	t.Run("bad events become error records with their reason codes", func(t *testing.T) {
		session := uuid.NewString()
		nextYear := time.Now().AddDate(1, 0, 0).UTC().Format("2006-01-02 15:04:05")
		cases := map[string]map[string]any{
			"empty_data":         {"session_id": session, "category": "c", "name": "n", "data": map[string]any{}, "timestamp": "2021-01-01 00:00:00"},
			"future_timestamp":   seedEvent(session, nextYear),
			"invalid_timestamp":  seedEvent(session, "last tuesday"),
			"invalid_session_id": seedEvent("not-a-uuid", "2021-01-01 00:00:00"),
			"missing_field":      {"session_id": session, "name": "n", "data": map[string]any{"a": 1}, "timestamp": "2021-01-01 00:00:00"},
		}
		ids := map[string]string{}
		for code, ev := range cases {
			res := do(t, "POST", p.gateway+"/events/", writeKey, ev)
			if res.status != http.StatusAccepted {
				t.Fatalf("%s: %d %s", code, res.status, res.body)
			}
			var rc receipt
			res.json(t, &rc)
			ids[code] = rc.ID
		}
		good := do(t, "POST", p.gateway+"/events/", writeKey, seedEvent(session, "2021-01-01 00:00:00"))
		for code, id := range ids {
			var got page[storedError]
			p.eventually(10*time.Second, code+" is listed", func() bool {
				do(t, "GET", p.query+"/errors/?reason="+code, adminKey, nil).json(t, &got)
				for _, e := range got.Results {
					if e.ID == id {
						return true
					}
				}
				return false
			})
			var e storedError
			do(t, "GET", p.query+"/errors/"+id, adminKey, nil).json(t, &e)
			if e.Stage != "validator" || e.Reasons[0].Code != code || !strings.Contains(e.Payload.Data, `"timestamp"`) {
				t.Fatalf("%s: error record %+v", code, e)
			}
		}
		var rc receipt
		good.json(t, &rc)
		p.eventually(10*time.Second, "the good event around them lands", func() bool {
			return do(t, "GET", p.query+"/events/"+rc.ID, adminKey, nil).status == http.StatusOK
		})
	})

	t.Run("a body that is not JSON gets 400 and is recorded as invalid_json", func(t *testing.T) {
		body := "this is not json " + uuid.NewString()
		res := do(t, "POST", p.gateway+"/events/", writeKey, body)
		if res.status != http.StatusBadRequest || res.errorCode(t) != "invalid_json" {
			t.Fatalf("got %d %s", res.status, res.body)
		}
		p.eventually(10*time.Second, "the invalid body is an error record", func() bool {
			var got page[storedError]
			do(t, "GET", p.query+"/errors/?stage=gateway&reason=invalid_json", adminKey, nil).json(t, &got)
			for _, e := range got.Results {
				if e.Payload.Data == body {
					return true
				}
			}
			return false
		})
	})

	t.Run("keys and scopes", func(t *testing.T) {
		ev := seedEvent(uuid.NewString(), "2021-01-01 00:00:00")
		for _, c := range []struct {
			method, url, key string
			want             int
		}{
			{"POST", p.gateway + "/events/", "", http.StatusUnauthorized},
			{"POST", p.gateway + "/events/", "eye_w_unknown", http.StatusUnauthorized},
			{"POST", p.gateway + "/events/", adminKey, http.StatusForbidden},
			{"POST", p.gateway + "/sessions/", adminKey, http.StatusForbidden},
			{"GET", p.query + "/events/", writeKey, http.StatusForbidden},
			{"GET", p.query + "/errors/", "", http.StatusUnauthorized},
		} {
			res := do(t, c.method, c.url, c.key, ev)
			if res.status != c.want || res.errorCode(t) == "" {
				t.Errorf("%s %s with %q: %d %s, want %d with a JSON error", c.method, c.url, c.key, res.status, res.body, c.want)
			}
		}
	})

	t.Run("edit and delete events with ETag and If-Match", func(t *testing.T) {
		session := uuid.NewString()
		var rc receipt
		do(t, "POST", p.gateway+"/events/", writeKey, seedEvent(session, "2021-06-15 00:00:00")).json(t, &rc)
		do(t, "POST", p.gateway+"/events/", writeKey, seedEvent(session, "2021-06-16 00:00:00"))
		var read response
		p.eventually(10*time.Second, "the event is stored", func() bool {
			read = do(t, "GET", p.query+"/events/"+rc.ID, adminKey, nil)
			return read.status == http.StatusOK
		})
		etag := read.header.Get("ETag")
		url := p.query + "/events/" + rc.ID

		res := do(t, "PATCH", url, adminKey, map[string]any{"name": "cta click"}, "If-Match", etag)
		var e storedEvent
		res.json(t, &e)
		if res.status != http.StatusOK || e.Name != "cta click" || e.Category != "page interaction" || e.Version != 2 {
			t.Fatalf("PATCH: %d %s", res.status, res.body)
		}
		if res := do(t, "PATCH", url, adminKey, map[string]any{"name": "lost update"}, "If-Match", etag); res.status != http.StatusPreconditionFailed {
			t.Fatalf("PATCH with a stale ETag: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", url, adminKey, map[string]any{"category": "c", "name": "n", "data": map[string]any{}, "timestamp": "2021-01-01 00:00:00"}); res.status != http.StatusBadRequest || res.errorCode(t) != "empty_data" {
			t.Fatalf("PUT with empty data: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", url, adminKey, map[string]any{"session_id": uuid.NewString(), "category": "c", "name": "n", "data": map[string]any{"a": 1}, "timestamp": "2021-01-01 00:00:00"}); res.status != http.StatusBadRequest {
			t.Fatalf("PUT moving the event to another session: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", url, writeKey, map[string]any{"name": "x"}); res.status != http.StatusForbidden {
			t.Fatalf("PUT with a write key: %d", res.status)
		}
		res = do(t, "PUT", url, adminKey, map[string]any{"category": "form interaction", "name": "submit", "data": map[string]any{"form": "signup"}, "timestamp": "2021-06-14 00:00:00"})
		res.json(t, &e)
		if res.status != http.StatusOK || e.Category != "form interaction" || e.Version != 3 {
			t.Fatalf("PUT: %d %s", res.status, res.body)
		}
		var s sessionRow
		do(t, "GET", p.query+"/sessions/"+session, adminKey, nil).json(t, &s)
		if s.EventCount != 2 || !s.FirstEventAt.Equal(time.Date(2021, 6, 14, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("session after PUT: %+v", s)
		}
		if res := do(t, "DELETE", url, adminKey, nil); res.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", res.status, res.body)
		}
		if res := do(t, "GET", url, adminKey, nil); res.status != http.StatusNotFound {
			t.Fatalf("GET after DELETE: %d", res.status)
		}
		do(t, "GET", p.query+"/sessions/"+session, adminKey, nil).json(t, &s)
		if s.EventCount != 1 || !s.FirstEventAt.Equal(time.Date(2021, 6, 16, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("session after DELETE: %+v", s)
		}
	})

	t.Run("a DRF client follows next and previous URLs through a filtered list", func(t *testing.T) {
		session, other := uuid.NewString(), uuid.NewString()
		var batch, want []any
		for i := range 25 {
			// fractions DRF renders with all six digits, or none
			ts := fmt.Sprintf("2021-06-15 00:00:%02d.%d00000", i, i%3)
			e := seedEvent(session, ts)
			want = append(want, e)
			noise := seedEvent(session, ts)
			noise["category"] = "form interaction" // filtered out by category
			batch = append(batch, e, noise, seedEvent(other, ts))
		}
		if res := do(t, "POST", p.gateway+"/events/", writeKey, batch); res.status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", res.status, res.body)
		}
		p.eventually(10*time.Second, "50 events stored", func() bool {
			var s sessionRow
			do(t, "GET", p.query+"/sessions/"+session, readKey, nil).json(t, &s)
			return s.EventCount == 50
		})
		// What a DRF client reads: next and previous URLs, session as an
		// object, timestamps as DRF renders them.
		type drfEvent struct {
			ID      string `json:"id"`
			Session struct {
				ID string `json:"id"`
			} `json:"session"`
			Category  string `json:"category"`
			Timestamp string `json:"timestamp"`
		}
		type drfPage struct {
			Next     *string    `json:"next"`
			Previous *string    `json:"previous"`
			Results  []drfEvent `json:"results"`
		}
		var pages [][]drfEvent
		var pg drfPage
		next := p.query + "/events/?category=page+interaction&session=" + session + "&ordering=timestamp&limit=10"
		for {
			pg = drfPage{}
			if res := do(t, "GET", next, readKey, nil); res.status != http.StatusOK {
				t.Fatalf("GET %s: %d %s", next, res.status, res.body)
			} else {
				res.json(t, &pg)
			}
			if (len(pages) == 0) != (pg.Previous == nil) || len(pages) > 5 {
				t.Fatalf("page %d: previous %v", len(pages), pg.Previous)
			}
			pages = append(pages, pg.Results)
			if pg.Next == nil {
				break
			}
			next = *pg.Next
		}
		seen := map[string]bool{}
		i := 0
		for _, page := range pages {
			for _, e := range page {
				w := fmt.Sprintf("2021-06-15T00:00:%02dZ", i)
				if i%3 != 0 {
					w = fmt.Sprintf("2021-06-15T00:00:%02d.%d00000Z", i, i%3)
				}
				if seen[e.ID] || e.Session.ID != session || e.Category != "page interaction" || e.Timestamp != w {
					t.Fatalf("event %d: %+v, want timestamp %s of session %s, once", i, e, w, session)
				}
				seen[e.ID] = true
				i++
			}
		}
		if len(pages) != 3 || i != len(want) {
			t.Fatalf("%d pages, %d events; want 3 pages, %d events", len(pages), i, len(want))
		}
		for back := len(pages) - 2; back >= 0; back-- {
			prev := *pg.Previous
			pg = drfPage{}
			do(t, "GET", prev, readKey, nil).json(t, &pg)
			if len(pg.Results) != len(pages[back]) || pg.Results[0].ID != pages[back][0].ID || pg.Next == nil {
				t.Fatalf("back to page %d: %+v", back, pg)
			}
		}
		if pg.Previous != nil {
			t.Fatalf("the first page, reached back, has previous %s", *pg.Previous)
		}
		cursor := (func() string { u, _ := url.Parse(*pg.Next); return u.Query().Get("cursor") })()
		if res := do(t, "GET", p.query+"/events/?ordering=-timestamp&cursor="+url.QueryEscape(cursor), readKey, nil); res.status != http.StatusBadRequest {
			t.Fatalf("a cursor reused with another ordering: %d", res.status)
		}
		if res := do(t, "GET", p.query+"/events/?sesion="+session, readKey, nil); res.status != http.StatusBadRequest || !strings.Contains(string(res.body), "unknown_parameter") {
			t.Fatalf("a misspelled filter: %d %s", res.status, res.body)
		}
		if res := do(t, "GET", p.query+"/events/?timestamp__gte=yesterday", readKey, nil); res.status != http.StatusBadRequest {
			t.Fatalf("a bad timestamp filter: %d", res.status)
		}
	})

	t.Run("swagger UI and specs are served", func(t *testing.T) {
		for _, base := range []string{p.gateway, p.query} {
			if res := do(t, "GET", base+"/docs/", "", nil); res.status != http.StatusOK || !strings.Contains(string(res.body), "swagger") {
				t.Errorf("%s/docs/: %d", base, res.status)
			}
			if res := do(t, "GET", base+"/docs/doc.json", "", nil); res.status != http.StatusOK || !strings.Contains(string(res.body), `"paths"`) {
				t.Errorf("%s/docs/doc.json: %d", base, res.status)
			}
			if res := do(t, "GET", base+"/docs/openapi.json", "", nil); res.status != http.StatusOK ||
				!strings.Contains(string(res.body), `"openapi": "3.`) || !strings.Contains(string(res.body), `"paths"`) {
				t.Errorf("%s/docs/openapi.json: %d", base, res.status)
			}
		}
	})
}

// TestWriterKilledMidStream: the writer dies with SIGKILL while events
// stream in; after a restart every accepted event is stored exactly once.
func TestWriterKilledMidStream(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	session := uuid.NewString()
	const batches, perBatch = 20, 50
	for b := range batches {
		var batch []any
		for i := range perBatch {
			batch = append(batch, seedEvent(session, time.Date(2021, 1, 1, 0, b, i, 0, time.UTC).Format(time.RFC3339)))
		}
		if res := do(t, "POST", p.gateway+"/events/", writeKey, batch); res.status != http.StatusAccepted {
			t.Fatalf("POST: %d %s", res.status, res.body)
		}
		if b == batches/2 {
			p.kill("writer")
			p.start("writer")
		}
	}
	var s sessionRow
	p.eventually(60*time.Second, "all events stored", func() bool {
		do(t, "GET", p.query+"/sessions/"+session, adminKey, nil).json(t, &s)
		return s.EventCount >= batches*perBatch
	})
	ids := map[string]bool{}
	for u := p.query + "/events/?limit=1000&session=" + session; u != ""; {
		var pg page[storedEvent]
		do(t, "GET", u, adminKey, nil).json(t, &pg)
		for _, e := range pg.Results {
			ids[e.ID] = true
		}
		u = ""
		if pg.Next != nil {
			u = *pg.Next
		}
	}
	if len(ids) != batches*perBatch || s.EventCount != batches*perBatch {
		t.Fatalf("stored %d distinct events, session counts %d; want %d", len(ids), s.EventCount, batches*perBatch)
	}
}

// TestKafkaUnavailable: with the broker gone, the gateway answers 503 with
// Retry-After within its deadline, and never 202.
func TestKafkaUnavailable(t *testing.T) {
	k, err := devstack.StartKafka("", 0)
	if err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t, pipelineOpts{brokers: strings.Join(k.Brokers(), ","), only: []string{"ingest-gateway"}})
	ev := seedEvent(uuid.NewString(), "2021-01-01 00:00:00")
	if res := do(t, "POST", p.gateway+"/events/", writeKey, ev); res.status != http.StatusAccepted {
		t.Fatalf("with Kafka up: %d %s", res.status, res.body)
	}
	k.Close()
	for range 3 {
		start := time.Now()
		res := do(t, "POST", p.gateway+"/events/", writeKey, ev)
		if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
			t.Fatalf("with Kafka down: %d %s (Retry-After %q)", res.status, res.body, res.header.Get("Retry-After"))
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("503 took %s", d)
		}
	}
	if res := do(t, "GET", p.gateway+"/readyz", "", nil); res.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Kafka down: %d", res.status)
	}
}

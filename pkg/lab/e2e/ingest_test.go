package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
)

// testApp is an application created straight in the pipeline's database,
// with a write key and a read key.
type testApp struct {
	id              uuid.UUID
	writeKey, readK string
}

func newApp(t *testing.T, p *pipeline, origins []string, rate float64, burst int, strict bool) testApp {
	t.Helper()
	ctx := context.Background()
	db, err := pg.Open(ctx, p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := auth.NewPGStore(db)
	if err != nil {
		t.Fatal(err)
	}
	a := testApp{id: uuid.New()}
	a.writeKey, _ = auth.NewKey(auth.ScopeWrite)
	a.readK, _ = auth.NewKey(auth.ScopeRead)
	if err := store.EnsureApplication(ctx, a.id, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE applications SET allowed_origins = $2, rate_limit = $3, rate_burst = $4, strict_sessions = $5 WHERE id = $1`,
		a.id, pq.StringArray(append([]string{}, origins...)), rate, burst, strict); err != nil {
		t.Fatal(err)
	}
	if err := store.PutKey(ctx, a.id, a.writeKey, "w", auth.ScopeWrite); err != nil {
		t.Fatal(err)
	}
	if err := store.PutKey(ctx, a.id, a.readK, "r", auth.ScopeRead); err != nil {
		t.Fatal(err)
	}
	return a
}

func sessionCount(t *testing.T, p *pipeline, key, session string) int {
	var s sessionRow
	if res := do(t, "GET", p.query+"/sessions/"+session, key, nil); res.status == http.StatusOK {
		res.json(t, &s)
	}
	return s.EventCount
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func TestIngestion(t *testing.T) {
	p := startPipeline(t, pipelineOpts{env: []string{"EYE_MAX_BODY_BYTES=1048576"}})

	t.Run("NDJSON: 100 000 events in one streamed request", func(t *testing.T) {
		session := uuid.NewString()
		var body bytes.Buffer
		const n = 100_000
		for i := range n {
			fmt.Fprintf(&body, `{"session_id":"%s","category":"page interaction","name":"pageview","data":{"i":%d,"path":"/p/%d"},"timestamp":"2021-06-15T00:00:00Z"}`+"\n", session, i, i%97)
		}
		res := do(t, "POST", p.gateway+"/events/", writeKey, body.Bytes(), "Content-Type", "application/x-ndjson")
		var out struct{ Accepted, Rejected int }
		res.json(t, &out)
		if res.status != http.StatusAccepted || out.Accepted != n || out.Rejected != 0 {
			t.Fatalf("stream: %d %s", res.status, res.body)
		}
		p.eventually(3*time.Minute, "all 100 000 events stored", func() bool { return sessionCount(t, p, adminKey, session) >= n })
		if got := sessionCount(t, p, adminKey, session); got != n {
			t.Fatalf("session counts %d events, want %d", got, n)
		}
	})

	t.Run("gzip bodies, and a gzip bomb gets 413", func(t *testing.T) {
		session := uuid.NewString()
		ev := fmt.Sprintf(`{"session_id":"%s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-06-15T00:00:00Z"}`, session)
		if res := do(t, "POST", p.gateway+"/events/", writeKey, gzipped(t, []byte(ev)), "Content-Encoding", "gzip"); res.status != http.StatusAccepted {
			t.Fatalf("gzip event: %d %s", res.status, res.body)
		}
		bomb := gzipped(t, bytes.Repeat([]byte(" "), 64<<20)) // 64 MiB of spaces in ~64 KiB
		res := do(t, "POST", p.gateway+"/events/", writeKey, bomb, "Content-Encoding", "gzip")
		if res.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(res.body), "EYE_MAX_BODY_BYTES") {
			t.Fatalf("gzip bomb: %d %s", res.status, res.body)
		}
		if res := do(t, "POST", p.gateway+"/events/", writeKey, []byte("not gzip"), "Content-Encoding", "gzip"); res.status != http.StatusBadRequest {
			t.Fatalf("corrupt gzip: %d %s", res.status, res.body)
		}
		p.eventually(10*time.Second, "the gzip event is stored", func() bool { return sessionCount(t, p, adminKey, session) == 1 })
	})

	t.Run("limits answer 413/400 naming the limit, never 5xx", func(t *testing.T) {
		session := uuid.NewString()
		big := fmt.Sprintf(`{"session_id":"%s","category":"c","name":"n","data":{"a":"%s"},"timestamp":"2021-06-15T00:00:00Z"}`, session, strings.Repeat("x", 40<<10))
		if res := do(t, "POST", p.gateway+"/events/", writeKey, big); res.status != http.StatusRequestEntityTooLarge || res.errorCode(t) != "too_large" {
			t.Fatalf("40 KB event: %d %s", res.status, res.body)
		}
		if res := do(t, "POST", p.gateway+"/events/", writeKey, bytes.Repeat([]byte("["), 2<<20)); res.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("2 MB body: %d %s", res.status, res.body)
		}
		deep := fmt.Sprintf(`{"session_id":"%s","data":%s1%s}`, session, strings.Repeat(`{"a":`, 40), strings.Repeat("}", 40))
		if res := do(t, "POST", p.gateway+"/events/", writeKey, deep); res.status != http.StatusBadRequest || res.errorCode(t) != "too_deep" {
			t.Fatalf("deep event: %d %s", res.status, res.body)
		}
		res := do(t, "POST", p.gateway+"/events/", writeKey, "["+big+"]")
		var out struct{ Events []struct{ Status string } }
		res.json(t, &out)
		if res.status != http.StatusAccepted || len(out.Events) != 1 || out.Events[0].Status != "rejected" {
			t.Fatalf("batch with a 40 KB event: %d %s", res.status, res.body)
		}
	})

	t.Run("a client id makes retries idempotent end to end", func(t *testing.T) {
		session := uuid.NewString()
		id := uuid.Must(uuid.NewV7()).String()
		ev := fmt.Sprintf(`{"id":"%s","session_id":"%s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-06-15T00:00:00Z"}`, id, session)
		for range 3 {
			var rc receipt
			res := do(t, "POST", p.gateway+"/events/", writeKey, ev)
			res.json(t, &rc)
			if res.status != http.StatusAccepted || rc.ID != id {
				t.Fatalf("POST: %d %s", res.status, res.body)
			}
		}
		do(t, "POST", p.gateway+"/events/", writeKey, "["+ev+","+ev+"]", "Content-Type", "application/json")
		p.eventually(10*time.Second, "the event is stored", func() bool {
			return do(t, "GET", p.query+"/events/"+id, adminKey, nil).status == http.StatusOK
		})
		time.Sleep(time.Second) // let any duplicate arrive
		var pg page[storedEvent]
		do(t, "GET", p.query+"/events/?session="+session, adminKey, nil).json(t, &pg)
		if len(pg.Results) != 1 || sessionCount(t, p, adminKey, session) != 1 {
			t.Fatalf("%d rows, session counts %d; want one", len(pg.Results), sessionCount(t, p, adminKey, session))
		}
	})

	t.Run("sent_at corrects the device clock, the client's timestamp is kept", func(t *testing.T) {
		session := uuid.NewString()
		ahead := time.Now().Add(3 * time.Hour).UTC()
		ev := fmt.Sprintf(`{"session_id":"%s","category":"c","name":"n","data":{"a":1},"timestamp":"%s","sent_at":"%s"}`,
			session, ahead.Add(-10*time.Second).Format(time.RFC3339Nano), ahead.Format(time.RFC3339Nano))
		var rc receipt
		do(t, "POST", p.gateway+"/events/", writeKey, ev).json(t, &rc)
		var e struct {
			Timestamp       time.Time  `json:"timestamp"`
			ClientTimestamp *time.Time `json:"client_timestamp"`
		}
		p.eventually(10*time.Second, "the event is stored", func() bool {
			res := do(t, "GET", p.query+"/events/"+rc.ID, adminKey, nil)
			if res.status == http.StatusOK {
				res.json(t, &e)
			}
			return res.status == http.StatusOK
		})
		if d := time.Since(e.Timestamp); d < 9*time.Second || d > time.Minute {
			t.Fatalf("corrected timestamp %s is %s ago, want about 10 s", e.Timestamp, d)
		}
		if e.ClientTimestamp == nil || !e.ClientTimestamp.Equal(stored(ahead.Add(-10*time.Second))) {
			t.Fatalf("client timestamp %v", e.ClientTimestamp)
		}
	})

	t.Run("rate limit: 429 with Retry-After for one key while another passes", func(t *testing.T) {
		slow := newApp(t, p, nil, 1, 5, false)
		session := uuid.NewString()
		ev := func(i int) string {
			return fmt.Sprintf(`{"session_id":"%s","category":"c","name":"n","data":{"i":%d},"timestamp":"2021-06-15T00:00:00Z"}`, session, i)
		}
		var limited response
		for i := range 20 {
			limited = do(t, "POST", p.gateway+"/events/", slow.writeKey, ev(i))
			if limited.status == http.StatusTooManyRequests {
				break
			}
		}
		if limited.status != http.StatusTooManyRequests || limited.header.Get("Retry-After") == "" {
			t.Fatalf("never limited: %d %s", limited.status, limited.body)
		}
		if res := do(t, "POST", p.gateway+"/events/", writeKey, ev(99)); res.status != http.StatusAccepted {
			t.Fatalf("another key while the first is limited: %d %s", res.status, res.body)
		}
	})

	t.Run("browsers: CORS for allowed origins, sendBeacon with a write key in the URL", func(t *testing.T) {
		web := newApp(t, p, []string{"https://shop.example"}, 0, 0, false)
		session := uuid.NewString()
		ev := fmt.Sprintf(`{"session_id":"%s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-06-15T00:00:00Z"}`, session)
		pre := do(t, "OPTIONS", p.gateway+"/events/", "", nil, "Origin", "https://shop.example", "Access-Control-Request-Method", "POST")
		if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != "https://shop.example" ||
			!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight: %d %v", pre.status, pre.header)
		}
		res := do(t, "POST", p.gateway+"/events/", web.writeKey, ev, "Origin", "https://shop.example")
		if res.status != http.StatusAccepted || res.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
			t.Fatalf("allowed origin: %d %v", res.status, res.header)
		}
		if res := do(t, "POST", p.gateway+"/events/", web.writeKey, ev, "Origin", "https://evil.example"); res.status != http.StatusForbidden {
			t.Fatalf("other origin: %d", res.status)
		}
		beacon := do(t, "POST", p.gateway+"/events/?key="+web.writeKey, "", ev, "Content-Type", "text/plain;charset=UTF-8", "Origin", "https://shop.example")
		if beacon.status != http.StatusAccepted {
			t.Fatalf("sendBeacon: %d %s", beacon.status, beacon.body)
		}
		if res := do(t, "POST", p.gateway+"/events/?key="+web.readK, "", ev); res.status != http.StatusUnauthorized {
			t.Fatalf("a read key in the URL: %d", res.status)
		}
		p.eventually(10*time.Second, "both events stored", func() bool { return sessionCount(t, p, web.readK, session) == 2 })
	})

	t.Run("strict sessions: an unregistered session becomes unknown_session", func(t *testing.T) {
		strict := newApp(t, p, nil, 0, 0, true)
		registered := uuid.NewString()
		if res := do(t, "POST", p.gateway+"/sessions/", strict.writeKey, map[string]string{"id": registered}); res.status != http.StatusCreated {
			t.Fatalf("register: %d %s", res.status, res.body)
		}
		ev := func(s string) string {
			return fmt.Sprintf(`{"session_id":"%s","category":"c","name":"n","data":{"a":1},"timestamp":"2021-06-15T00:00:00Z"}`, s)
		}
		var ok, unknown receipt
		do(t, "POST", p.gateway+"/events/", strict.writeKey, ev(registered)).json(t, &ok)
		do(t, "POST", p.gateway+"/events/", strict.writeKey, ev(uuid.NewString())).json(t, &unknown)
		p.eventually(10*time.Second, "the registered session's event is stored", func() bool {
			return do(t, "GET", p.query+"/events/"+ok.ID, strict.readK, nil).status == http.StatusOK
		})
		var e storedError
		p.eventually(10*time.Second, "the unknown session's event is an error", func() bool {
			res := do(t, "GET", p.query+"/errors/"+unknown.ID, strict.readK, nil)
			if res.status == http.StatusOK {
				res.json(t, &e)
			}
			return res.status == http.StatusOK
		})
		if e.Reasons[0].Code != "unknown_session" || e.Stage != "writer" {
			t.Fatalf("error record %+v", e)
		}
		// Teams reading the errors topic see it too, keyed by its session.
		m := p.readTopic(t, func(t contract.Topics) string { return t.Errors }, func(m kafka.Message) bool {
			var rec contract.Error
			return contract.Decode(m.Value, &rec) == nil && rec.ID.String() == unknown.ID
		})
		var rec contract.Error
		if err := contract.Decode(m.Value, &rec); err != nil || rec.Stage != contract.StageWriter ||
			rec.Reasons[0].Code != event.CodeUnknownSession || string(m.Key) != rec.SessionID.String() {
			t.Fatalf("error record on the topic: key %s, %+v (%v)", m.Key, rec, err)
		}
		// Another application cannot take the session over.
		if res := do(t, "POST", p.gateway+"/sessions/", writeKey, map[string]string{"id": registered}); res.status != http.StatusConflict {
			t.Fatalf("registering another application's session: %d", res.status)
		}
	})

	t.Run("failed authentication is rate-limited per address", func(t *testing.T) {
		var res response
		for range 40 {
			res = do(t, "POST", p.gateway+"/events/", "eye_w_guess", `{}`)
			if res.status == http.StatusTooManyRequests {
				break
			}
		}
		if res.status != http.StatusTooManyRequests {
			t.Fatalf("40 bad keys: last answer %d", res.status)
		}
	})
}

// stored is a time as Postgres keeps it: UTC, microseconds.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// readerKey reads readerApp's data only.
const readerKey = "eye_r_httpapi_reader_test_key_00000000"

var readerApp = uuid.MustParse("0190a0b0-0000-7000-8000-0000000000b2")

// publisher is a Kafka stand-in: it records tombstones, or fails.
type publisher struct {
	fail error
	msgs []contract.Message
}

func (p *publisher) Publish(_ context.Context, msgs ...contract.Message) error {
	if p.fail != nil {
		return p.fail
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

// newQueryServer is the query API with an eraser on pub, with adminKey (dev
// application, read + admin), writeKey and readerKey.
func newQueryServer(t *testing.T, pub query.Publisher) (http.Handler, *sqlx.DB) {
	t.Helper()
	s := newTestServer(t, func(s *testServer) []Option {
		eraser, err := query.NewEraser(s.pg, pub, "eye.erasures.v1", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return []Option{WithEraser(eraser)}
	})
	s.addReader(t, readerApp, readerKey)
	return s, s.db
}

func insertEvent(t *testing.T, db *sqlx.DB, app, session uuid.UUID, category, name string, ts time.Time) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	db.MustExec(`INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at) VALUES ($1, $2, $3, $4, $5, '{"a":1}', $6, now())`,
		id, app, session, category, name, ts)
	db.MustExec(`INSERT INTO sessions (id, app_id, created_at, event_count) VALUES ($1, $2, now(), 0) ON CONFLICT DO NOTHING`, session, app)
	return id
}

func TestTimelineStatsAndAuditRoutes(t *testing.T) {
	h, db := newQueryServer(t, &publisher{})
	t0 := time.Date(2021, 6, 15, 10, 0, 0, 0, time.UTC)
	mine, theirs := uuid.New(), uuid.New()
	late := insertEvent(t, db, auth.DevAppID, mine, "page", "view", t0.Add(time.Minute))
	early := insertEvent(t, db, auth.DevAppID, mine, "form", "submit", t0)
	insertEvent(t, db, readerApp, theirs, "page", "view", t0.Add(2*time.Minute))

	for _, path := range []string{"/sessions/" + mine.String() + "/events", "/sessions/" + mine.String() + "/events/"} {
		res := call(t, h, "GET", path, adminKey, "")
		var list EventList
		res.decode(t, &list)
		if res.status != http.StatusOK || len(list.Results) != 2 || list.Results[0].ID != early || list.Results[1].ID != late || list.Next != nil {
			t.Fatalf("GET %s: %d %s", path, res.status, res.body)
		}
	}
	if res := call(t, h, "GET", "/sessions/"+mine.String()+"/events?limit=1", adminKey, ""); res.status != http.StatusOK || !jsonHasNext(t, res) {
		t.Fatalf("a page of 1: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/sessions/"+mine.String()+"/events", readerKey, ""); res.status != http.StatusNotFound {
		t.Fatalf("another application's timeline: %d %s", res.status, res.body)
	}

	stats := func(key string, q url.Values) (answer, StatsResult) {
		res := call(t, h, "GET", "/stats/events/?"+q.Encode(), key, "")
		var out StatsResult
		if res.status == http.StatusOK {
			res.decode(t, &out)
		}
		return res, out
	}
	q := url.Values{"bucket": {"minute"}, "from": {"2021-06-15 10:00:00"}, "to": {"2021-06-15T10:59:59Z"}, "group": {"category"}}
	res, out := stats(adminKey, q)
	if res.status != http.StatusOK || len(out.Results) != 3 || out.Bucket != string(query.Minute) || fmt.Sprint(out.Group) != "[category]" ||
		*out.Results[0].Category != "form" || out.Results[0].Name != nil || out.Results[2].Count != 1 {
		t.Fatalf("admin stats: %d %s", res.status, res.body)
	}
	if res, out := stats(readerKey, q); res.status != http.StatusOK || len(out.Results) != 1 || !out.Results[0].Bucket.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("read key stats: %d %s", res.status, res.body)
	}
	for _, c := range []struct {
		set, value, code string
	}{
		{"bucket", "week", "invalid_parameter"},
		{"from", "", "invalid_parameter"},
		{"group", "category,category", "invalid_parameter"},
		{"group", "app", "invalid_parameter"},
		{"to", "2021-06-14 00:00:00", "invalid_range"},
		{"to", "2021-06-17 00:00:00", "too_many_buckets"},
	} {
		bad := url.Values{}
		for k, v := range q {
			bad[k] = v
		}
		bad.Set(c.set, c.value)
		if res, _ := stats(adminKey, bad); res.status != http.StatusBadRequest || res.code(t) != c.code {
			t.Errorf("%s=%q: %d %s, want 400 %s", c.set, c.value, res.status, res.body, c.code)
		}
	}

	// Events name their session as the seed's clients wrote it, and render
	// times as DRF does, in every answer.
	ref := `"session_id":"` + mine.String() + `","session":{"id":"` + mine.String() + `"}`
	res = call(t, h, "PATCH", "/events/"+early.String(), adminKey, `{"name": "send", "timestamp": "2021-06-15 10:00:00.100000"}`)
	if res.status != http.StatusOK || !strings.Contains(string(res.body), ref) || !strings.Contains(string(res.body), `"timestamp":"2021-06-15T10:00:00.100000Z"`) {
		t.Fatalf("PATCH: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/events/"+early.String(), adminKey, ""); res.status != http.StatusOK || !strings.Contains(string(res.body), ref) {
		t.Fatalf("GET: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/events/?session="+mine.String(), adminKey, ""); strings.Count(string(res.body), ref) != 2 ||
		!strings.Contains(string(res.body), `"timestamp":"2021-06-15T10:01:00Z"`) {
		t.Fatalf("list: %d %s", res.status, res.body)
	}
	var keyID uuid.UUID
	hash := auth.HashKey(adminKey)
	if err := db.Get(&keyID, `SELECT id FROM api_keys WHERE hash = $1`, hash[:]); err != nil {
		t.Fatal(err)
	}
	var audit AuditList
	res = call(t, h, "GET", "/events/"+early.String()+"/audit/", adminKey, "")
	res.decode(t, &audit)
	if res.status != http.StatusOK || len(audit.Results) != 1 || audit.Results[0].Action != query.ActionPatch ||
		audit.Results[0].ActorKeyID != keyID || audit.Results[0].ActorAppID != auth.DevAppID ||
		audit.Results[0].Before.Name != "submit" || audit.Results[0].After.Name != "send" || !strings.Contains(string(res.body), ref) {
		t.Fatalf("audit: %d %s", res.status, res.body)
	}
	// An entry written before events had "session" and DRF times reads as
	// one written now.
	db.MustExec(`INSERT INTO event_audit (id, event_id, session_id, action, actor_key_id, actor_app_id, at, before, after)
		VALUES ($1, $2, $3, 'patch', $4, $5, now(), $6, $6)`, uuid.New(), late, mine, keyID, auth.DevAppID,
		`{"id":"`+late.String()+`","session_id":"`+mine.String()+`","category":"page","name":"view","data":{},"timestamp":"2021-06-15T10:01:00.1Z","received_at":"2021-06-15T10:01:00Z","version":1}`)
	res = call(t, h, "GET", "/events/"+late.String()+"/audit/", adminKey, "")
	if res.status != http.StatusOK || strings.Count(string(res.body), ref) != 2 || strings.Count(string(res.body), `"timestamp":"2021-06-15T10:01:00.100000Z"`) != 2 {
		t.Fatalf("audit written before: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/events/"+early.String()+"/audit", readerKey, ""); res.status != http.StatusForbidden {
		t.Fatalf("audit with a read key: %d", res.status)
	}
}

func jsonHasNext(t *testing.T, a answer) bool {
	var l EventList
	a.decode(t, &l)
	return l.Next != nil && len(l.Results) == 1
}

func TestEraseSessionRoute(t *testing.T) {
	pub := &publisher{fail: errors.New("no broker")}
	h, db := newQueryServer(t, pub)
	session := uuid.New()
	insertEvent(t, db, auth.DevAppID, session, "page", "view", time.Now().Add(-time.Hour))
	path := "/sessions/" + session.String()

	if res := call(t, h, "DELETE", path, readerKey, ""); res.status != http.StatusForbidden {
		t.Fatalf("erasure with a read key: %d", res.status)
	}
	res := call(t, h, "DELETE", path, adminKey, "")
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" || res.code(t) != "unavailable" {
		t.Fatalf("erasure without Kafka: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", path, adminKey, ""); res.status != http.StatusOK {
		t.Fatalf("the session after a failed erasure: %d", res.status)
	}

	pub.fail = nil
	res = call(t, h, "DELETE", path+"/", adminKey, "")
	var out query.Erasure
	res.decode(t, &out)
	if res.status != http.StatusOK || out.SessionID != session || !out.Session || out.Events != 1 || len(pub.msgs) != 1 {
		t.Fatalf("erasure: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", path, adminKey, ""); res.status != http.StatusNotFound {
		t.Fatalf("the erased session: %d", res.status)
	}
	if res := call(t, h, "GET", path+"/events", adminKey, ""); res.status != http.StatusNotFound {
		t.Fatalf("the erased session's timeline: %d", res.status)
	}
}

package httpapi

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
)

// get is a GET of rawURL (absolute, as a page's next and previous are, or
// a path) through a proxy that says the client used https.
func get(t *testing.T, h http.Handler, rawURL, key string) answer {
	t.Helper()
	req := httptest.NewRequest("GET", rawURL, nil)
	if !strings.HasPrefix(rawURL, "http") {
		req.Host = "eye.example:8443"
	}
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Authorization", "Bearer "+key)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// TestListsAsDRFClientReadsThem pages through a filtered list as a DRF
// client does: following next URLs verbatim, then previous back.
func TestListsAsDRFClientReadsThem(t *testing.T) {
	h, db := newQueryServer(t, &publisher{})
	t0 := time.Date(2021, 1, 1, 9, 15, 27, 0, time.UTC)
	session, other := uuid.New(), uuid.New()
	var want []uuid.UUID
	for i := range 25 {
		ts := t0.Add(time.Duration(i)*time.Second + time.Duration(i%3)*100*time.Millisecond)
		want = append(want, insertEvent(t, db, auth.DevAppID, session, "page", "view", ts))
		insertEvent(t, db, auth.DevAppID, session, "form", "submit", ts) // another category
		insertEvent(t, db, auth.DevAppID, other, "page", "view", ts)     // another session
	}
	slices.Reverse(want) // newest first

	type page struct {
		Next, Previous *string
		Results        []json.RawMessage
	}
	var pages [][]uuid.UUID
	var last page
	next := "/events/?category=page&session=" + session.String() + "&limit=10"
	for next != "" && len(pages) < 10 {
		res := get(t, h, next, adminKey)
		if res.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", next, res.status, res.body)
		}
		last = page{}
		res.decode(t, &last)
		if (len(pages) == 0) != (last.Previous == nil) {
			t.Fatalf("page %d: previous %v", len(pages), last.Previous)
		}
		var ids []uuid.UUID
		for _, r := range last.Results {
			var e struct {
				ID        uuid.UUID `json:"id"`
				SessionID uuid.UUID `json:"session_id"`
				Session   struct {
					ID uuid.UUID `json:"id"`
				} `json:"session"`
				Timestamp string `json:"timestamp"`
			}
			if err := json.Unmarshal(r, &e); err != nil || e.Session.ID != session || e.SessionID != session {
				t.Fatalf("event %s: %v", r, err)
			}
			if ts, _ := time.Parse(time.RFC3339Nano, e.Timestamp); !strings.HasSuffix(e.Timestamp, map[int]string{0: "Z", 100: ".100000Z", 200: ".200000Z"}[ts.Nanosecond()/1e6]) || len(e.Timestamp) != map[bool]int{true: 20, false: 27}[ts.Nanosecond() == 0] {
				t.Fatalf("timestamp %q is not rendered as DRF renders it", e.Timestamp)
			}
			ids = append(ids, e.ID)
		}
		pages = append(pages, ids)
		next = ""
		if last.Next != nil {
			next = *last.Next
			if !strings.HasPrefix(next, "https://eye.example:8443/events/?") || !strings.Contains(next, "category=page") || !strings.Contains(next, "limit=10") {
				t.Fatalf("next URL %s", next)
			}
		}
	}
	if got := slices.Concat(pages...); !slices.Equal(got, want) || len(pages) != 3 || len(pages[2]) != 5 {
		t.Fatalf("followed next through %d pages: %v, want %v", len(pages), got, want)
	}
	for i := 1; i >= 0; i-- {
		res := get(t, h, *last.Previous, adminKey)
		last = page{}
		res.decode(t, &last)
		var ids []uuid.UUID
		for _, r := range last.Results {
			var e struct{ ID uuid.UUID }
			json.Unmarshal(r, &e)
			ids = append(ids, e.ID)
		}
		if res.status != http.StatusOK || !slices.Equal(ids, pages[i]) || last.Next == nil {
			t.Fatalf("back to page %d: %d %s", i, res.status, res.body)
		}
	}
	if last.Previous != nil {
		t.Fatalf("the first page, reached back, has previous %s", *last.Previous)
	}

	// A cursor changed, cut, or used for another list or ordering: 400.
	cursor := cursorOf(t, *last.Next)
	tampered := []byte(cursor)
	tampered[len(tampered)/2] ^= 1
	for _, path := range []string{
		"/events/?cursor=" + string(tampered),
		"/events/?cursor=" + cursor[:len(cursor)-2],
		"/events/?ordering=timestamp&cursor=" + cursor,
		"/sessions/?cursor=" + cursor,
		"/errors/?cursor=" + cursor,
	} {
		if res := get(t, h, path, adminKey); res.status != http.StatusBadRequest || res.code(t) != "invalid_cursor" {
			t.Errorf("%s: %d %s", path, res.status, res.body)
		}
	}
}

func TestUnknownListParameters(t *testing.T) {
	h, _ := newQueryServer(t, &publisher{})
	id := uuid.New().String()
	for path, known := range map[string]string{
		"/events/?sesion=" + id:                          "application, category, cursor, from, limit, name, ordering, session, timestamp__gte, timestamp__lte, to",
		"/sessions/?from=2021-01-01T00:00:00Z&since=1":   "application, created__gte, created__lte, cursor, from, limit, to",
		"/errors/?reasons=empty_data":                    "application, category, cursor, detected__gte, detected__lte, from, limit, name, reason, replayed, session, stage, to",
		"/sessions/" + id + "/events?ordering=timestamp": "cursor, limit",
		"/events/" + id + "/audit?page=2":                "cursor, limit",
		"/admin/applications/?name=x":                    "cursor, limit",
		"/admin/applications/" + id + "/keys?limit=1":    "none",
	} {
		res := get(t, h, path, adminKey)
		if res.status != http.StatusBadRequest || res.code(t) != "unknown_parameter" || !strings.HasSuffix(string(res.body), "known parameters: "+known+`"}}`) {
			t.Errorf("%s: %d %s", path, res.status, res.body)
		}
	}
	// The documented aliases and every filter are known.
	for _, path := range []string{
		"/events/?from=2021-01-01T00:00:00Z&to=2021-01-02T00:00:00Z&timestamp__gte=2021-01-01T00:00:00Z&timestamp__lte=2021-01-02T00:00:00Z&session=" + id + "&category=a&name=b&ordering=timestamp&limit=5&application=" + id,
		"/sessions/?from=2021-01-01T00:00:00Z&to=2021-01-02T00:00:00Z&created__gte=2021-01-01T00:00:00Z&created__lte=2021-01-02T00:00:00Z&limit=5",
		"/errors/?reason=empty_data&stage=validator&replayed=false&from=2021-01-01T00:00:00Z&detected__lte=2021-01-02T00:00:00Z&category=a&name=b",
	} {
		if res := get(t, h, path, adminKey); res.status != http.StatusOK {
			t.Errorf("%s: %d %s", path, res.status, res.body)
		}
	}
}

func TestPageURLScheme(t *testing.T) {
	for _, c := range []struct {
		proto string
		tls   bool
		want  string
	}{
		{"", false, "http"},
		{"", true, "https"},
		{"https", false, "https"},
		{"HTTPS, http", false, "https"},
		{"http", true, "http"},
		{"javascript", false, "http"},
		{"javascript", true, "https"},
	} {
		r := httptest.NewRequest("GET", "/events/", nil)
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := schemeOf(r); got != c.want {
			t.Errorf("%+v: %s", c, got)
		}
	}
}

package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestKeysDoWhatTheirNamesSay: the dev read key reads and gets 403 on every
// admin or destructive operation, the admin key does them; a client behind
// an address that failed authentication many times still gets its valid
// key served; bodies that are not JSON get 415; a malformed Authorization
// header is told what is wrong; schema admin refuses a schema that accepts
// nothing and dry-runs a new version against stored events.
func TestKeysDoWhatTheirNamesSay(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})

	t.Run("failed authentications never lock out a valid key", func(t *testing.T) {
		limited := 0
		for range 25 {
			switch res := do(t, "POST", p.gateway+"/events/", "eye_w_not_a_key", seedEvent(uuid.NewString(), "2021-01-01 00:00:00")); res.status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Fatalf("failed authentication: %d %s", res.status, res.body)
			}
		}
		if limited == 0 {
			t.Fatal("25 failed authentications from one address, none limited")
		}
		if res := do(t, "POST", p.gateway+"/events/", writeKey, seedEvent(uuid.NewString(), "2021-01-01 00:00:00")); res.status != http.StatusAccepted {
			t.Fatalf("valid key after 25 failures from its address: %d %s", res.status, res.body)
		}
	})

	t.Run("a malformed Authorization header is told what is wrong", func(t *testing.T) {
		for _, c := range []struct{ header, want string }{
			{"Token abc", "Authorization scheme must be Bearer (got Token)"},
			{"Bearer", "missing key after Bearer"},
		} {
			res := do(t, "GET", p.query+"/events/", "", nil, "Authorization", c.header)
			if res.status != http.StatusUnauthorized || !strings.Contains(string(res.body), c.want) {
				t.Errorf("%q: %d %s, want 401 %q", c.header, res.status, res.body, c.want)
			}
		}
		if res := do(t, "GET", p.query+"/events/", "", nil); res.status != http.StatusUnauthorized || !strings.Contains(string(res.body), "missing Authorization header") {
			t.Errorf("no header: %d %s", res.status, res.body)
		}
	})

	session := uuid.NewString()
	var receipt struct {
		ID string `json:"id"`
	}
	do(t, "POST", p.gateway+"/events/", writeKey, seedEvent(session, "2021-06-01 10:00:00")).json(t, &receipt)
	p.eventually(20*time.Second, "the event is stored", func() bool {
		return do(t, "GET", p.query+"/events/"+receipt.ID, readKey, nil).status == http.StatusOK
	})

	t.Run("bodies that are not JSON get 415", func(t *testing.T) {
		for _, u := range []string{p.gateway + "/events/", p.gateway + "/sessions/"} {
			res := do(t, "POST", u, writeKey, "session_id="+session, "Content-Type", "application/x-www-form-urlencoded")
			if res.status != http.StatusUnsupportedMediaType || res.errorCode(t) != "unsupported_media_type" || !strings.Contains(string(res.body), "application/json") {
				t.Errorf("form-encoded POST %s: %d %s", u, res.status, res.body)
			}
		}
		res := do(t, "PATCH", p.query+"/events/"+receipt.ID, adminKey, "name=x", "Content-Type", "application/x-www-form-urlencoded")
		if res.status != http.StatusUnsupportedMediaType {
			t.Errorf("form-encoded PATCH: %d %s", res.status, res.body)
		}
		// navigator.sendBeacon sends a string body as text/plain.
		if res := do(t, "POST", p.gateway+"/events/?key="+writeKey, "", `{"session_id":"`+session+`","category":"page interaction","name":"pageview","data":{"host":"h","path":"/"},"timestamp":"2021-06-01 10:00:01"}`,
			"Content-Type", "text/plain;charset=UTF-8"); res.status != http.StatusAccepted {
			t.Errorf("beacon: %d %s", res.status, res.body)
		}
	})

	t.Run("the read key reads and cannot administer", func(t *testing.T) {
		if res := do(t, "GET", p.query+"/events/?session="+session, readKey, nil); res.status != http.StatusOK {
			t.Fatalf("read key lists events: %d %s", res.status, res.body)
		}
		dev := "00000000-0000-4000-8000-00000000de00"
		var keys page[apiKey]
		do(t, "GET", p.query+"/admin/applications/"+dev+"/keys", adminKey, nil).json(t, &keys)
		var readKeyID string
		for _, k := range keys.Results {
			if strings.HasPrefix(readKey, k.Prefix) {
				readKeyID = k.ID
			}
		}
		if readKeyID == "" {
			t.Fatalf("dev read key not listed: %+v", keys.Results)
		}
		ev, other := p.query+"/events/"+receipt.ID, uuid.NewString()
		for _, c := range []struct{ method, path string }{
			{"PUT", "/events/" + receipt.ID}, {"PATCH", "/events/" + receipt.ID}, {"DELETE", "/events/" + receipt.ID},
			{"GET", "/events/" + receipt.ID + "/audit"}, {"DELETE", "/sessions/" + session},
			{"POST", "/errors/replay"}, {"POST", "/errors/" + other + "/replay"},
			{"POST", "/admin/applications/"}, {"GET", "/admin/applications/"}, {"GET", "/admin/applications/" + dev},
			{"PATCH", "/admin/applications/" + dev}, {"POST", "/admin/applications/" + dev + "/disable"},
			{"POST", "/admin/applications/" + dev + "/enable"}, {"POST", "/admin/applications/" + dev + "/keys"},
			{"GET", "/admin/applications/" + dev + "/keys"}, {"POST", "/admin/keys/" + readKeyID + "/rotate"},
			{"POST", "/admin/keys/" + readKeyID + "/revoke"}, {"POST", "/admin/schemas/"}, {"GET", "/admin/schemas/"},
			{"GET", "/admin/schemas/" + url.PathEscape("page interaction") + "/pageview/1"},
		} {
			res := do(t, c.method, p.query+c.path, readKey, map[string]any{"scopes": []string{"admin"}})
			if res.status != http.StatusForbidden || res.errorCode(t) != "forbidden" || !strings.Contains(string(res.body), "'admin' scope") {
				t.Errorf("%s %s with the read key: %d %s, want 403 naming the admin scope", c.method, c.path, res.status, res.body)
			}
		}
		if res := do(t, "GET", ev, readKey, nil); res.status != http.StatusOK {
			t.Fatalf("the event after the read key's attempts: %d", res.status)
		}
		if res := do(t, "GET", ev+"/audit", adminKey, nil); res.status != http.StatusOK {
			t.Fatalf("admin key reads the audit: %d %s", res.status, res.body)
		}
		// A rotated read key is still a read key.
		var rotated apiKey
		res := do(t, "POST", p.query+"/admin/keys/"+readKeyID+"/rotate", adminKey, map[string]any{"overlap": "1h"})
		res.json(t, &rotated)
		if res.status != http.StatusCreated || !strings.HasPrefix(rotated.Key, "eye_r_") {
			t.Fatalf("rotate the dev read key: %d %s", res.status, res.body)
		}
		if res := do(t, "GET", p.query+"/admin/applications/", rotated.Key, nil); res.status != http.StatusForbidden {
			t.Fatalf("rotated read key on an admin route: %d", res.status)
		}
	})

	t.Run("schema admin refuses a schema that accepts nothing and dry-runs against stored events", func(t *testing.T) {
		body := func(schema string) string {
			return `{"category": "page interaction", "name": "pageview", "schema": ` + schema + `}`
		}
		if res := do(t, "POST", p.query+"/admin/schemas/?force=true", adminKey, body(`false`)); res.status != http.StatusUnprocessableEntity || res.errorCode(t) != "schema_accepts_nothing" {
			t.Fatalf("schema false: %d %s", res.status, res.body)
		}
		var check struct {
			Checked, Failing int
			Samples          []struct {
				EventID string `json:"event_id"`
				Pointer string
				Message string
			}
		}
		strict := `{"type": "object", "required": ["referrer"]}`
		res := do(t, "POST", p.query+"/admin/schemas/?dry_run=true", adminKey, body(strict))
		res.json(t, &check)
		if res.status != http.StatusOK || check.Checked < 2 || check.Failing != check.Checked || len(check.Samples) == 0 || check.Samples[0].Pointer != "/data/referrer" {
			t.Fatalf("dry run: %d %s", res.status, res.body)
		}
		if res := do(t, "POST", p.query+"/admin/schemas/", adminKey, body(strict)); res.status != http.StatusConflict || res.errorCode(t) != "schema_rejects_events" {
			t.Fatalf("a version every stored pageview fails: %d %s", res.status, res.body)
		}
		var list page[struct{ Version int }]
		do(t, "GET", p.query+"/admin/schemas/?category="+url.QueryEscape("page interaction")+"&name=pageview", adminKey, nil).json(t, &list)
		if len(list.Results) != 0 {
			t.Fatalf("stored after a dry run and a refusal: %+v", list.Results)
		}
	})
}

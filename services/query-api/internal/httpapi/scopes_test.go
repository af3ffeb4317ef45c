package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/query-api/internal/query"
	"github.com/the-eye/eye/services/query-api/internal/schemas"
)

// newFullServer is the query API with every optional part: erasure,
// replays and schemas.
func newFullServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServer(t, func(s *testServer) []Option {
		eraser, err := query.NewEraser(s.pg, &publisher{}, "eye.erasures.v1", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		replayer, err := query.NewReplayer(s.pg, event.DefaultRules(), &rawTopic{}, "eye.events.raw.v1", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		st, ss, err := newSchemas(s.db)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := schemas.NewPublisher(schemas.PublisherConfig{Store: st, Producer: &schemaTopic{}, Topic: "eye.schemas.v1", Timeout: time.Second,
			Interval: time.Hour, Ensure: func(context.Context) error { return nil }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return []Option{WithEraser(eraser), WithReplayer(replayer), WithSchemas(ss, pub, 0)}
	})
}

// readOnly reports whether a route is one a read key may use: reading its
// application's data. Everything else changes data or administers.
func readOnly(method, path string) bool {
	return method == http.MethodGet && !strings.HasPrefix(path, "/admin") && !strings.HasSuffix(strings.TrimSuffix(path, "/"), "/audit")
}

// TestReadKeyCannotAdminister walks every authenticated route: a read key
// gets 403 naming the admin scope on each one that is not read-only, and
// the admin key passes the scope check on all of them.
func TestReadKeyCannotAdminister(t *testing.T) {
	s := newFullServer(t)
	fill := strings.NewReplacer(":id", uuid.NewString(), ":category", "c", ":name", "n", ":version", "1")
	var admin int
	for _, rt := range s.Handler.(*gin.Engine).Routes() {
		if rt.Path == "/readyz" {
			continue
		}
		path := fill.Replace(rt.Path)
		body := ""
		if rt.Method != http.MethodGet && rt.Method != http.MethodDelete {
			body = "{}"
		}
		res := call(t, s, rt.Method, path, readKey, body)
		if readOnly(rt.Method, rt.Path) {
			if res.status == http.StatusForbidden || res.status == http.StatusUnauthorized {
				t.Errorf("%s %s with the read key: %d %s", rt.Method, rt.Path, res.status, res.body)
			}
		} else {
			admin++
			if res.status != http.StatusForbidden || res.code(t) != "forbidden" || !strings.Contains(string(res.body), "'admin' scope") {
				t.Errorf("%s %s with the read key: %d %s, want 403 naming the admin scope", rt.Method, rt.Path, res.status, res.body)
			}
		}
		if res := call(t, s, rt.Method, path, adminKey, body); res.status == http.StatusForbidden || res.status == http.StatusUnauthorized {
			t.Errorf("%s %s with the admin key: %d %s", rt.Method, rt.Path, res.status, res.body)
		}
	}
	if admin < 30 { // 15 admin or destructive routes, each with and without a trailing slash
		t.Fatalf("only %d admin routes checked", admin)
	}
}

// Every route that reads a body answers 415 to one that is not JSON.
func TestNonJSONBodiesGet415(t *testing.T) {
	s := newFullServer(t)
	id := uuid.NewString()
	for _, r := range []struct{ method, path string }{
		{http.MethodPut, "/events/" + id},
		{http.MethodPatch, "/events/" + id},
		{http.MethodPost, "/admin/applications/"},
		{http.MethodPatch, "/admin/applications/" + id},
		{http.MethodPost, "/admin/applications/" + id + "/keys"},
		{http.MethodPost, "/admin/keys/" + id + "/rotate"},
		{http.MethodPost, "/errors/" + id + "/replay"},
		{http.MethodPost, "/admin/schemas/"},
	} {
		res := callWith(t, s, r.method, r.path, adminKey, "name=x", "Content-Type", "application/x-www-form-urlencoded")
		if res.status != http.StatusUnsupportedMediaType || res.code(t) != "unsupported_media_type" || !strings.Contains(string(res.body), "application/json") {
			t.Errorf("%s %s form-encoded: %d %s", r.method, r.path, res.status, res.body)
		}
		if res := callWith(t, s, r.method, r.path, readKey, "name=x", "Content-Type", "text/plain"); res.status != http.StatusForbidden {
			t.Errorf("%s %s with the read key: %d, want the scope checked first", r.method, r.path, res.status)
		}
	}
	if res := callWith(t, s, http.MethodPatch, "/admin/applications/"+id, adminKey, `{"name":"x"}`, "Content-Type", "application/merge-patch+json"); res.status == http.StatusUnsupportedMediaType {
		t.Errorf("merge-patch+json: %d %s", res.status, res.body)
	}
}

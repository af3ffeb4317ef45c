package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/metrics"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newEngine returns an engine with GET and POST /things (registered with
// Handle) and GET /panic.
func newEngine(t *testing.T) (*gin.Engine, *metrics.Registry) {
	t.Helper()
	reg := metrics.New("test")
	r := httpx.NewEngine(quiet, reg)
	ok := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) }
	httpx.Handle(r, http.MethodGet, "/things/", ok)
	httpx.Handle(r, http.MethodPost, "/things", ok)
	r.GET("/panic", func(*gin.Context) { panic("boom") })
	return r, reg
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(r http.Handler, method, target, body string) answer {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(method, target, rd))
	return answer{w.Code, w.Header(), w.Body.String()}
}

// wantError checks a JSON error answer.
func wantError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d (%s)", a.status, status, a.body)
	}
	var e httpx.ErrorBody
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("body %q, want a JSON error with code %q", a.body, code)
	}
}

func TestRoutesAnswerWithAndWithoutSlashWithoutRedirect(t *testing.T) {
	r, _ := newEngine(t)
	for _, target := range []string{"/things", "/things/"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			a := do(r, method, target, "")
			if a.status != http.StatusOK || a.header.Get("Location") != "" {
				t.Errorf("%s %s: %d, Location %q", method, target, a.status, a.header.Get("Location"))
			}
		}
	}
	// Paths the router could "fix" are not redirected either.
	for _, target := range []string{"/THINGS", "//things", "/healthz/"} {
		a := do(r, http.MethodGet, target, "")
		wantError(t, a, http.StatusNotFound, "not_found")
		if a.header.Get("Location") != "" {
			t.Errorf("GET %s redirected to %s", target, a.header.Get("Location"))
		}
	}
}

func TestJSONErrors(t *testing.T) {
	r, _ := newEngine(t)
	wantError(t, do(r, http.MethodGet, "/nope", ""), http.StatusNotFound, "not_found")
	wantError(t, do(r, http.MethodDelete, "/things/", ""), http.StatusMethodNotAllowed, "method_not_allowed")
	a := do(r, http.MethodGet, "/panic", "")
	wantError(t, a, http.StatusInternalServerError, "internal")
	if a.header.Get("X-Request-Id") == "" {
		t.Error("no request id on a recovered panic")
	}
	if a := do(r, http.MethodGet, "/healthz", ""); a.status != http.StatusOK {
		t.Errorf("healthz: %d", a.status)
	}
}

func TestRequestMetrics(t *testing.T) {
	r, _ := newEngine(t)
	do(r, http.MethodGet, "/things", "")
	do(r, http.MethodGet, "/things/", "")
	do(r, http.MethodPost, "/things", `{"a":1}`)
	do(r, http.MethodPost, "/things/", "")
	do(r, http.MethodGet, "/nope/9ab1b579-7021-4e0c-8ea1-2ac9f52f3058", "")
	do(r, http.MethodDelete, "/things", "")
	do(r, "BREW", "/things", "")
	do(r, http.MethodGet, "/panic", "")

	a := do(r, http.MethodGet, "/metrics", "")
	if a.status != http.StatusOK {
		t.Fatalf("/metrics: %d", a.status)
	}
	for _, want := range []string{
		// Both spellings of a Handle route are one route.
		`eye_http_requests_total{method="GET",route="/things",service="test",status="200"} 2`,
		`eye_http_requests_total{method="POST",route="/things",service="test",status="200"} 2`,
		// No raw URL ever becomes a label.
		`eye_http_requests_total{method="GET",route="unmatched",service="test",status="404"} 1`,
		`eye_http_requests_total{method="DELETE",route="unmatched",service="test",status="405"} 1`,
		`eye_http_requests_total{method="other",route="unmatched",service="test",status="405"} 1`,
		`eye_http_requests_total{method="GET",route="/panic",service="test",status="500"} 1`,
		`eye_http_request_duration_seconds_count{method="GET",route="/things",service="test"} 2`,
		// The empty POST counts as 0 bytes; GETs are not observed.
		`eye_http_request_body_bytes_sum{route="/things",service="test"} 7`,
		`eye_http_request_body_bytes_count{route="/things",service="test"} 2`,
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(a.body, want+"\n") && !strings.Contains(a.body, want+" ") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(a.body, "9ab1b579") || strings.Contains(a.body, "BREW") {
		t.Error("a client-chosen string became a label value")
	}
}

func TestEnginesShareARegistry(t *testing.T) {
	reg := metrics.New("test")
	a, b := httpx.NewEngine(quiet, reg), httpx.NewEngine(quiet, reg)
	do(a, http.MethodGet, "/healthz", "")
	do(b, http.MethodGet, "/healthz", "")
	if body := do(a, http.MethodGet, "/metrics", "").body; !strings.Contains(body, `eye_http_requests_total{method="GET",route="/healthz",service="test",status="200"} 2`) {
		t.Errorf("requests of both engines not counted together:\n%s", body)
	}
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	for _, tc := range []struct {
		name   string
		checks map[string]func(context.Context) error
		failed string // "" when ready
	}{
		{"none", nil, ""},
		{"all up", map[string]func(context.Context) error{"kafka": ok, "postgres": ok}, ""},
		{"one down", map[string]func(context.Context) error{"kafka": ok, "postgres": down}, "postgres"},
		{"both down", map[string]func(context.Context) error{"postgres": down, "kafka": down}, "kafka, postgres"},
		{"hangs", map[string]func(context.Context) error{"kafka": hang, "postgres": ok}, "kafka"},
		{"panics", map[string]func(context.Context) error{"kafka": func(context.Context) error { panic("boom") }}, "kafka"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httpx.NewEngine(quiet, metrics.New("test"))
			r.GET("/readyz", httpx.Readyz(quiet, tc.checks))
			start := time.Now()
			a := do(r, http.MethodGet, "/readyz", "")
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("readyz took %s", d)
			}
			if tc.failed == "" {
				if a.status != http.StatusOK || !strings.Contains(a.body, `"status":"ready"`) {
					t.Fatalf("%d %s", a.status, a.body)
				}
				return
			}
			wantError(t, a, http.StatusServiceUnavailable, "unavailable")
			if !strings.Contains(a.body, "not ready: "+tc.failed+" unreachable") || strings.Contains(a.body, "refused") {
				t.Fatalf("body %s should name %q and not leak the error", a.body, tc.failed)
			}
		})
	}
}

// A check that ignores its context (lib/pq's Ping against a frozen server)
// neither holds the answer past the timeout nor piles up goroutines.
func TestReadyzDoesNotWaitForAStuckCheck(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	stuck := func(context.Context) error {
		calls.Add(1)
		<-release
		return nil
	}
	r := httpx.NewEngine(quiet, metrics.New("test"))
	r.GET("/readyz", httpx.Readyz(quiet, map[string]func(context.Context) error{"postgres": stuck}))
	start := time.Now()
	wantError(t, do(r, http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, "unavailable")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("readyz waited %s for a stuck check", d)
	}
	// Still stuck: reported at once, not started again.
	start = time.Now()
	wantError(t, do(r, http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, "unavailable")
	if d := time.Since(start); d > time.Second || calls.Load() != 1 {
		t.Fatalf("second probe took %s and ran the check %d times in all", d, calls.Load())
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for do(r, http.MethodGet, "/readyz", "").status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("not ready after the check returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDocsServesOpenAPI3(t *testing.T) {
	r := httpx.NewEngine(quiet, metrics.New("test"))
	spec := `{"openapi":"3.0.3"}`
	httpx.Docs(r, "test", []byte(spec))
	a := do(r, http.MethodGet, "/docs/openapi.json", "")
	if a.status != http.StatusOK || a.body != spec || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %q %q", a.status, a.header.Get("Content-Type"), a.body)
	}
}

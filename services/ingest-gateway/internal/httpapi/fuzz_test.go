package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
)

const testKey = "eye_w_fuzz"

// keys is an in-memory key store with one write key.
type keys struct{}

func (keys) LookupKey(_ context.Context, h auth.Hash) (auth.Principal, error) {
	if h != auth.HashKey(testKey) {
		return auth.Principal{}, auth.ErrUnknownKey
	}
	return auth.Principal{AppID: uuid.New(), KeyID: uuid.New(), Scopes: []auth.Scope{auth.ScopeWrite},
		Settings: auth.AppSettings{AllowedOrigins: []string{"https://shop.example"}}}, nil
}

type discard struct{}

func (discard) Publish(context.Context, ...contract.Message) error { return nil }

type noSessions struct{}

func (noSessions) Register(context.Context, uuid.UUID, uuid.UUID, time.Time) error { return nil }

func newTestServer(t testing.TB, cfg Config) http.Handler {
	t.Helper()
	svc, err := ingest.NewService(discard{}, noSessions{}, contract.NewTopics("eye."),
		ingest.Limits{MaxEvents: 100, MaxStreamEvents: 1000, MaxEventBytes: 1024, MaxDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.NewAuthenticator(keys{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(svc, a, cfg, func(c *gin.Context) { c.Status(http.StatusOK) })
	if err != nil {
		t.Fatal(err)
	}
	r := httpx.NewEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg.Metrics)
	api.Register(r)
	return r
}

func testConfig() Config {
	return Config{MaxBodyBytes: 64 << 10, PublishTimeout: time.Second, StreamTimeout: 5 * time.Second, MaxInflight: 8,
		RateLimit: 1e9, RateBurst: 1e9, AuthFailures: httpx.NewFailureLimiter(time.Millisecond, 1e6), Metrics: metrics.New("test")}
}

// FuzzPostEvents: whatever the body, content type and encoding, the gateway
// answers 2xx or 4xx — never a panic, never a 5xx.
func FuzzPostEvents(f *testing.F) {
	const sid = "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"
	for _, seed := range []string{
		`{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`,
		`[{"session":{"id":"` + sid + `"}},{"id":"x"},7,null]`,
		"{\"session_id\":\"" + sid + "\"}\n\n{\"a\":[[[[[[[[[[1]]]]]]]]]]}\nnot json\n",
		`[]`, ``, `"\u0000"`, `{"a":1e999}`, `{"a":"\xff"}`, `[[[[[[[[[[[[[[`,
	} {
		f.Add([]byte(seed), "application/json", false)
		f.Add([]byte(seed), "application/x-ndjson", true)
	}
	h := newTestServer(f, testConfig())
	f.Fuzz(func(t *testing.T, body []byte, contentType string, compress bool) {
		payload := body
		if compress {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			payload = b.Bytes()
		}
		req := httptest.NewRequest(http.MethodPost, "/events/", bytes.NewReader(payload))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", contentType)
		if compress {
			req.Header.Set("Content-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code < 200 {
			t.Fatalf("status %d for %q (%s, gzip %v): %s", w.Code, body, contentType, compress, w.Body.String())
		}
	})
}

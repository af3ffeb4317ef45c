package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkPostOneEvent: the gateway's CPU for one single-event request
// through the whole middleware chain and handler, without the network or
// the broker (go test -bench PostOneEvent -benchmem ./internal/httpapi).
func BenchmarkPostOneEvent(b *testing.B) {
	cfg := testConfig()
	cfg.MaxInflight = 1 << 20
	h := newTestServer(b, cfg)
	const doc = `{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"page interaction","name":"cta click","timestamp":"2026-11-26T10:00:00.123Z",` +
		`"data":{"host":"www.example.com","path":"/pricing/enterprise","referrer":"https://www.google.com/search?q=eye","element":"button#signup.primary","value":42}}`
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/events/", strings.NewReader(doc))
			req.Header.Set("Authorization", "Bearer "+testKey)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusAccepted {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}

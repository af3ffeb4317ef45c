package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/the-eye/eye/pkg/metrics"
)

func scrape(t *testing.T, reg *metrics.Registry) string {
	t.Helper()
	w := httptest.NewRecorder()
	reg.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", w.Code)
	}
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

func TestRegistry(t *testing.T) {
	reg := metrics.New("writer")
	reg.Counter("eye_things_total", "Things.", "kind").WithLabelValues("a").Add(2)
	// Asking again for the same metric gives the same collector.
	reg.Counter("eye_things_total", "Things.", "kind").WithLabelValues("a").Inc()
	reg.Gauge("eye_level", "Level.").WithLabelValues().Set(7)
	reg.Histogram("eye_size", "Size.", []float64{1, 10}).WithLabelValues().Observe(5)

	body := scrape(t, reg)
	for _, want := range []string{
		`eye_things_total{kind="a",service="writer"} 3`,
		`eye_level{service="writer"} 7`,
		`eye_size_bucket{service="writer",le="10"} 1`,
		"go_goroutines ",
		"go_memstats_alloc_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	// Two registries share nothing: no global state.
	if other := scrape(t, metrics.New("other")); strings.Contains(other, "eye_things_total") {
		t.Error("a metric leaked into another registry")
	}
}

func TestRegistryRefusesMistakes(t *testing.T) {
	reg := metrics.New("test")
	reg.Counter("eye_dup_total", "Dup.", "a")
	for name, f := range map[string]func(){
		"no prefix":        func() { reg.Counter("things_total", "Things.") },
		"other labels":     func() { reg.Counter("eye_dup_total", "Dup.", "b") },
		"other help":       func() { reg.Counter("eye_dup_total", "Other.", "a") },
		"other type":       func() { reg.Gauge("eye_dup_total", "Dup.", "a") },
		"invalid name":     func() { reg.Gauge("eye_bad-name", "Bad.") },
		"invalid label":    func() { reg.Gauge("eye_good", "Good.", "Kind") },
		"reserved label":   func() { reg.Histogram("eye_h", "H.", nil, "le") },
		"duplicate labels": func() { reg.Counter("eye_x_total", "X.", "a", "a") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

// Package metrics is The Eye's thin layer over the Prometheus client: one
// registry per process, created by New and passed to whatever records
// metrics, holding the Go runtime and process collectors plus the eye_
// metrics the shared packages and services define on it. Nothing is
// registered globally.
//
// The helpers panic on programming errors (a name without the eye_ prefix,
// names or labels that are not snake_case, a name reused with other labels,
// help or type), the way
// prometheus.MustRegister does: they happen at start-up, on every run.
// Asking twice for the same metric with the same help and labels returns the
// collector registered first, so several instances of a component (the
// writer's consumers, say) share one metric, told apart by their labels.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Prefix starts the name of every metric The Eye defines.
const Prefix = "eye_"

// ServiceLabel is the constant label carrying the service name on every eye_
// metric.
const ServiceLabel = "service"

// Registry is a process's metrics registry. Its zero value is not usable;
// call New.
type Registry struct {
	service string
	reg     *prometheus.Registry
}

// New returns a registry with the Go runtime and process collectors. Every
// eye_ metric created on it carries the constant label service=<service>.
func New(service string) *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &Registry{service: service, reg: reg}
}

// Handler serves the registry in the Prometheus text (or OpenMetrics, when
// asked for) exposition format, for GET /metrics.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Gather collects the current value of every metric; it makes Registry a
// prometheus.Gatherer, which tests use to read metrics back.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) { return r.reg.Gather() }

// Counter returns a counter vector named name (which must start with eye_
// and, by convention, end in _total) with the given variable labels.
func (r *Registry) Counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: checkNames(name, labels), Help: help, ConstLabels: r.constLabels()}, labels)
	return register(r, c)
}

// Gauge returns a gauge vector named name (which must start with eye_) with
// the given variable labels.
func (r *Registry) Gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: checkNames(name, labels), Help: help, ConstLabels: r.constLabels()}, labels)
	return register(r, g)
}

// Histogram returns a histogram vector named name (which must start with
// eye_) with the given upper bucket bounds (nil: prometheus.DefBuckets) and
// variable labels (not "le", which the buckets use).
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	if slices.Contains(labels, "le") {
		panic(fmt.Sprintf("metrics: histogram %s cannot have an le label", name))
	}
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: checkNames(name, labels), Help: help, ConstLabels: r.constLabels(), Buckets: buckets}, labels)
	return register(r, h)
}

// checkNames panics unless name has the eye_ prefix and name and labels are
// snake_case (which every Prometheus version accepts unquoted); it returns
// name.
func checkNames(name string, labels []string) string {
	if !strings.HasPrefix(name, Prefix) {
		panic(fmt.Sprintf("metrics: %q lacks the %q prefix", name, Prefix))
	}
	for _, n := range append([]string{name}, labels...) {
		if !snakeCase(n) {
			panic(fmt.Sprintf("metrics: %q (metric %s) is not snake_case", n, name))
		}
	}
	return name
}

func snakeCase(s string) bool {
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != "" && !strings.HasPrefix(s, "__")
}

func (r *Registry) constLabels() prometheus.Labels {
	return prometheus.Labels{ServiceLabel: r.service}
}

// register registers c, or returns the identical collector registered
// before it.
func register[C prometheus.Collector](r *Registry, c C) C {
	err := r.reg.Register(c)
	if err == nil {
		return c
	}
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("metrics: %v", err))
}

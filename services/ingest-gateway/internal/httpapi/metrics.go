package httpapi

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
)

// counters are the gateway's own metrics: what became of events, and how
// many a request carried.
type counters struct {
	events *prometheus.CounterVec   // status, reason
	batch  *prometheus.HistogramVec // format
}

func newCounters(reg *metrics.Registry) counters {
	return counters{
		events: reg.Counter("eye_gateway_events_total",
			"Events the gateway answered for, by status (accepted, rejected) and rejection reason code (empty when accepted).",
			"status", "reason"),
		batch: reg.Histogram("eye_gateway_request_events",
			"Events per accepted request, by body format (single, array, ndjson).",
			[]float64{1, 10, 100, 1000, 10000, 100000, 1000000}, "format"),
	}
}

func (m counters) receipts(format string, rs []ingest.Receipt) {
	accepted := 0
	for _, r := range rs {
		if r.Status == ingest.StatusAccepted {
			accepted++
		} else {
			m.events.WithLabelValues(ingest.StatusRejected, string(r.Reasons[0].Code)).Inc()
		}
	}
	m.events.WithLabelValues(ingest.StatusAccepted, "").Add(float64(accepted))
	m.batch.WithLabelValues(format).Observe(float64(len(rs)))
}

func (m counters) stream(res ingest.StreamResult) {
	m.events.WithLabelValues(ingest.StatusAccepted, "").Add(float64(res.Accepted))
	if res.Rejected > 0 {
		// Only the first rejections are itemised; the rest count as "other".
		listed := 0
		for _, r := range res.Rejections {
			m.events.WithLabelValues(ingest.StatusRejected, string(r.Reasons[0].Code)).Inc()
			listed++
		}
		if rest := res.Rejected - listed; rest > 0 {
			m.events.WithLabelValues(ingest.StatusRejected, "other").Add(float64(rest))
		}
	}
	m.batch.WithLabelValues("ndjson").Observe(float64(res.Accepted + res.Rejected))
}

func (m counters) failure(err error) {
	var rejected *ingest.RejectedError
	if errors.As(err, &rejected) {
		m.events.WithLabelValues(ingest.StatusRejected, string(rejected.Reason.Code)).Inc()
	}
}

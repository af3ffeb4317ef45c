// Package loadgen generates load the way users send it and measures what
// they would see: an open-loop scheduler that sends at a fixed arrival rate
// and measures each request's latency from the moment it was meant to
// leave (so a slow server cannot hide its latency behind a slow client:
// coordinated omission is corrected), a max-throughput mode with a fixed
// number of workers, a latency histogram with accurate high percentiles,
// and realistic events (≈300-byte data, many applications' sessions,
// skewed categories) in the gateway's wire formats.
package loadgen

import (
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram records durations (ns) in an HDR histogram with three
// significant digits, so a percentile is reported within 0.1% of the
// recorded value, from 1 ns to an hour (longer counts as an hour). Record
// may be called from any goroutine; a mutex guards the histogram (at the
// load generator's rates it costs tens of ns, no more than atomic buckets
// did). The zero value is ready to use.
type Histogram struct {
	mu  sync.Mutex
	h   *hdr.Histogram // nil until the first use
	max int64          // exact, where the histogram keeps 3 digits
}

// histMax is the longest duration a histogram tells apart.
const histMax = int64(time.Hour)

// hist returns the histogram, made on first use; h.mu is held.
func (h *Histogram) hist() *hdr.Histogram {
	if h.h == nil {
		h.h = hdr.New(1, histMax, 3)
	}
	return h.h
}

// Record adds one duration (negative counts as 0).
func (h *Histogram) Record(d time.Duration) {
	v := min(max(int64(d), 0), histMax)
	h.mu.Lock()
	_ = h.hist().RecordValue(v) // in range by construction
	h.max = max(h.max, v)
	h.mu.Unlock()
}

// Count is the number of recorded durations.
func (h *Histogram) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hist().TotalCount()
}

// Max is the longest recorded duration.
func (h *Histogram) Max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.max)
}

// Mean is the average recorded duration.
func (h *Histogram) Mean() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.hist().Mean())
}

// Quantile returns the duration below or at which a fraction q (0…1) of
// the recorded durations lie (never above Max), or 0 when nothing was
// recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(min(h.hist().ValueAtQuantile(100*q), h.max))
}

// Merge adds the durations recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	o.mu.Lock()
	snap, omax := o.hist().Export(), o.max
	o.mu.Unlock()
	other := hdr.Import(snap)
	h.mu.Lock()
	h.hist().Merge(other)
	h.max = max(h.max, omax)
	h.mu.Unlock()
}

// Summary is a histogram's headline figures.
type Summary struct {
	Count int64         `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns count, mean, p50, p99, p99.9 and max.
func (h *Histogram) Summary() Summary {
	return Summary{Count: h.Count(), Mean: h.Mean(), P50: h.Quantile(0.5), P99: h.Quantile(0.99),
		P999: h.Quantile(0.999), Max: h.Max()}
}

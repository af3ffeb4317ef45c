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
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in log-linear buckets: exact below 256 ns,
// then 128 buckets per power of two, so a percentile is reported within
// 1/128 (0.8%) of the recorded value. Record is lock-free and may be
// called from any goroutine. The zero value is ready to use.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // ns
	max    atomic.Int64  // ns
}

const (
	subBits     = 7
	subBuckets  = 1 << subBits // 128
	histBuckets = subBuckets * (64 - subBits + 1)
)

// bucketOf is the index of the bucket holding v (ns, ≥ 0).
func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [128, 255]
	return subBuckets*(shift+1) + int(v>>shift) - subBuckets
}

// bucketHigh is the largest value bucket i holds.
func bucketHigh(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return (m+1)<<shift - 1
}

// Record adds one duration (negative counts as 0).
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is the number of recorded durations.
func (h *Histogram) Count() int64 { return int64(h.n.Load()) }

// Max is the longest recorded duration.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the average recorded duration.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the duration below or at which a fraction q (0…1) of
// the recorded durations lie: the upper bound of the bucket holding the
// ⌈q·n⌉-th smallest one (never above Max), or 0 when nothing was
// recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(bucketHigh(i)), h.Max())
		}
	}
	return h.Max()
}

// Merge adds the durations recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
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

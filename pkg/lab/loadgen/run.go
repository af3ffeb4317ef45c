package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Op sends one request and reports how many events it carried that the
// server accepted; a non-nil error marks the request failed (its latency is
// not recorded, its error is counted by its text).
// worker is the index of the goroutine sending it (0 … Workers-1), so that
// each can keep state of its own, e.g. a Generator.
type Op func(ctx context.Context, worker int) (events int, err error)

// Config describes a run.
type Config struct {
	// Rate is the fixed arrival rate in requests per second (open loop).
	// Zero means max-throughput mode: Workers goroutines each send their
	// next request as soon as the previous one is answered.
	Rate float64
	// Duration is how long requests are scheduled (open loop) or sent
	// (max mode).
	Duration time.Duration
	// Workers bounds the requests in flight (open loop; default 256) or is
	// the number of workers (max mode; default 16). In open loop, a request
	// whose time has come while every worker is busy waits for one and is
	// counted late; its latency still runs from its intended time.
	Workers int
	// Grace is how long, after Duration, requests scheduled within
	// Duration may still be sent before the rest are given up and counted
	// as Unsent (open loop; default 10 s).
	Grace time.Duration
	// LateAfter is how far behind its intended time a request must leave
	// to count as late (default 1 ms).
	LateAfter time.Duration
}

// Result is what a run measured.
type Result struct {
	Mode     string           `json:"mode"`              // "open" or "max"
	Rate     float64          `json:"offered_rate"`      // requests/s offered (open loop)
	Workers  int              `json:"workers"`           // bound on requests in flight
	Elapsed  time.Duration    `json:"elapsed_ns"`        // first intended send to last answer
	Sent     int64            `json:"sent"`              // requests sent
	OK       int64            `json:"ok"`                // requests answered as success
	Failed   int64            `json:"failed"`            // requests failed (Errors says why)
	Events   int64            `json:"events"`            // events in successful requests
	Late     int64            `json:"late"`              // left more than LateAfter after their intended time
	Blocked  int64            `json:"blocked"`           // had to wait for a worker (the in-flight bound was hit)
	Unsent   int64            `json:"unsent"`            // scheduled but given up at the end
	MaxDelay time.Duration    `json:"max_send_delay_ns"` // longest wait between intended and actual send
	Errors   map[string]int64 `json:"errors,omitempty"`  // failures by error text
	// Latency runs from the intended send time (open loop) or from the
	// actual send (max mode) to the answer, for successful requests.
	Latency Summary `json:"latency"`
	// Service runs from the actual send to the answer.
	Service Summary `json:"service"`
}

// RequestsPerSec is the rate of successful requests.
func (r Result) RequestsPerSec() float64 { return perSec(r.OK, r.Elapsed) }

// EventsPerSec is the rate of events in successful requests.
func (r Result) EventsPerSec() float64 { return perSec(r.Events, r.Elapsed) }

// Held reports whether an open-loop run kept its schedule: every request
// was sent and none failed.
func (r Result) Held() bool { return r.Unsent == 0 && r.Failed == 0 }

// String is a one-line summary.
func (r Result) String() string {
	s := fmt.Sprintf("%s: %.0f req/s, %.0f events/s, p50 %s p99 %s p99.9 %s max %s; sent %d ok %d failed %d late %d unsent %d",
		r.Mode, r.RequestsPerSec(), r.EventsPerSec(), ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max),
		r.Sent, r.OK, r.Failed, r.Late, r.Unsent)
	if len(r.Errors) > 0 {
		var keys []string
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s += "; errors:"
		for _, k := range keys[:min(len(keys), 3)] {
			s += fmt.Sprintf(" %d× %q", r.Errors[k], k)
		}
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// recorder accumulates what the workers observe.
type recorder struct {
	latency, service Histogram
	sent, ok, failed atomic.Int64
	events, late     atomic.Int64
	maxDelay         atomic.Int64
	mu               sync.Mutex
	errs             map[string]int64
}

func (rec *recorder) do(ctx context.Context, op Op, worker int, intended time.Time, lateAfter time.Duration) {
	sent := time.Now()
	if delay := sent.Sub(intended); delay > lateAfter {
		rec.late.Add(1)
		for {
			m := rec.maxDelay.Load()
			if int64(delay) <= m || rec.maxDelay.CompareAndSwap(m, int64(delay)) {
				break
			}
		}
	}
	rec.sent.Add(1)
	n, err := op(ctx, worker)
	done := time.Now()
	if err != nil {
		rec.failed.Add(1)
		rec.mu.Lock()
		rec.errs[err.Error()]++
		rec.mu.Unlock()
		return
	}
	rec.ok.Add(1)
	rec.events.Add(int64(n))
	rec.latency.Record(done.Sub(intended))
	rec.service.Record(done.Sub(sent))
}

// Run sends requests with op according to cfg and returns what it
// measured. It returns early (with what it has) when ctx ends.
func Run(ctx context.Context, cfg Config, op Op) (Result, error) {
	if cfg.Duration <= 0 || cfg.Rate < 0 {
		return Result{}, errors.New("loadgen: Duration must be positive and Rate not negative")
	}
	if cfg.LateAfter <= 0 {
		cfg.LateAfter = time.Millisecond
	}
	rec := &recorder{errs: map[string]int64{}}
	var res Result
	if cfg.Rate > 0 {
		res = runOpen(ctx, cfg, op, rec)
	} else {
		res = runMax(ctx, cfg, op, rec)
	}
	res.Sent, res.OK, res.Failed = rec.sent.Load(), rec.ok.Load(), rec.failed.Load()
	res.Events, res.Late = rec.events.Load(), rec.late.Load()
	res.MaxDelay = time.Duration(rec.maxDelay.Load())
	res.Latency, res.Service = rec.latency.Summary(), rec.service.Summary()
	if len(rec.errs) > 0 {
		res.Errors = rec.errs
	}
	return res, ctx.Err()
}

// runOpen schedules request i at start + i/Rate for every i within
// Duration. Workers goroutines take the requests; when all are busy the
// dispatcher waits for one (the request is then late, and its latency
// includes the wait) rather than drop anything.
func runOpen(ctx context.Context, cfg Config, op Op, rec *recorder) Result {
	if cfg.Workers <= 0 {
		cfg.Workers = 256
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	total := int64(cfg.Rate * cfg.Duration.Seconds())
	interval := float64(time.Second) / cfg.Rate
	work := make(chan time.Time)
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Go(func() {
			for intended := range work {
				rec.do(ctx, op, w, intended, cfg.LateAfter)
			}
		})
	}
	start := time.Now()
	giveUp := time.NewTimer(cfg.Duration + cfg.Grace)
	defer giveUp.Stop()
	var dispatched, blocked int64
	sleep := time.NewTimer(0)
	defer sleep.Stop()
	<-sleep.C
dispatch:
	for i := range total {
		intended := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(intended); d > 0 {
			sleep.Reset(d)
			select {
			case <-sleep.C:
			case <-ctx.Done():
				break dispatch
			}
		}
		select {
		case work <- intended:
		default:
			blocked++
			select {
			case work <- intended:
			case <-giveUp.C:
				break dispatch
			case <-ctx.Done():
				break dispatch
			}
		}
		dispatched++
	}
	close(work)
	wg.Wait()
	return Result{Mode: "open", Rate: cfg.Rate, Workers: cfg.Workers, Elapsed: time.Since(start),
		Blocked: blocked, Unsent: total - dispatched}
}

// runMax keeps Workers requests in flight for Duration.
func runMax(ctx context.Context, cfg Config, op Op, rec *recorder) Result {
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	start := time.Now()
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				rec.do(ctx, op, w, time.Now(), time.Hour)
			}
		})
	}
	wg.Wait()
	return Result{Mode: "max", Workers: cfg.Workers, Elapsed: time.Since(start)}
}

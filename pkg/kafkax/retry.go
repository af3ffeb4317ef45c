package kafkax

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"
)

// Retry paces and reports the transient failures of a loop that must outlive
// them (a fetch loop, a start-up wait): a jittered exponential backoff, and
// log lines that stay few however often the loop fails. The zero value of
// every field but Log and What is usable. A Retry is not safe for concurrent
// use.
type Retry struct {
	Log  *slog.Logger
	What string // what is failing, for the log: "kafka fetch", "schemas topic"

	Min, Max time.Duration // backoff bounds (100 ms and 5 s when zero)
	Every    time.Duration // at most one log line per Every while failing (10 s when zero)

	backoff  *backoff.ExponentialBackOff // made on the first Wait
	failures int                         // since the last success
	since    time.Time                   // first failure since the last success
	logged   time.Time                   // last log line
	last     error
}

// Failed records a failure. The first one after a success is logged at once
// (Warn); while failures go on, a summary with their count and the latest
// error is logged at most once per Every.
func (r *Retry) Failed(err error) {
	now := time.Now()
	r.last = err
	if r.failures++; r.failures == 1 {
		r.since, r.logged = now, now
		r.Log.Warn(r.What+" failing, retrying", "err", err)
		return
	}
	if now.Sub(r.logged) >= cmp0(r.Every, 10*time.Second) {
		r.logged = now
		r.Log.Warn(r.What+" still failing, retrying", "err", err, "failures", r.failures, "for", now.Sub(r.since).Round(time.Millisecond).String())
	}
}

// Wait sleeps for the next backoff (cenkalti/backoff's exponential one):
// Min, doubling up to Max, each drawn at random within ±50% so that
// processes failing together do not retry in lockstep. It returns false, at
// once, when ctx ends first.
func (r *Retry) Wait(ctx context.Context) bool {
	if r.backoff == nil {
		r.backoff = &backoff.ExponentialBackOff{
			InitialInterval:     cmp0(r.Min, 100*time.Millisecond),
			MaxInterval:         cmp0(r.Max, 5*time.Second),
			Multiplier:          2,
			RandomizationFactor: 0.5,
		}
		r.backoff.Reset()
	}
	t := time.NewTimer(r.backoff.NextBackOff())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Until calls attempt until it succeeds, reporting failures through r and
// waiting r's backoff between attempts, or until ctx ends. It returns nil
// after a success and ctx's error once ctx ended: a caller running it in
// the background cancels ctx and waits for it to return.
func Until(ctx context.Context, r *Retry, attempt func(context.Context) error) error {
	for {
		err := attempt(ctx)
		if err == nil {
			r.Succeeded()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.Failed(err)
		if !r.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// Succeeded resets the backoff; after failures it logs the recovery (Info).
func (r *Retry) Succeeded() {
	if r.backoff != nil {
		r.backoff.Reset()
	}
	if r.failures == 0 {
		return
	}
	r.Log.Info(r.What+" recovered", "failures", r.failures, "after", time.Since(r.since).Round(time.Millisecond).String())
	r.failures = 0
}

// Failures is the number of failures since the last success.
func (r *Retry) Failures() int { return r.failures }

// Last is the most recent failure, nil before the first.
func (r *Retry) Last() error { return r.last }

func cmp0(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// hotErrors is how many errors in a row FetchMessage may return without
// waiting before Next backs off. kafka-go's reader paces its own retries
// (its partition readers back off 100 ms → 1 s between attempts, its
// consumer-group loop waits JoinGroupBackoff between joins), and the errors
// it reports wait in the same queue as the messages of healthy partitions
// (ReaderConfig.QueueCapacity, 100), so draining that queue quickly is right:
// sleeping after each error would only hold those messages back. Only a
// reader that fails at once, again and again, beyond what the queue can
// hold, is spinning, and gets the backoff.
const hotErrors = 1000

// instant is how fast an error must come back to count as not waited for.
const instant = time.Millisecond

// Next returns r's next message. It rides out errors until ctx ends: each is
// passed to onError (may be nil) and to retry.Failed, and the loop goes on at
// once, unless the reader is spinning (see hotErrors), in which case it backs
// off. ok is false only when ctx ended. retry.Succeeded is called for every
// message, so the recovery is logged with the first message after failures.
func Next(ctx context.Context, r *kafka.Reader, retry *Retry, onError func(error)) (m kafka.Message, ok bool) {
	hot := 0
	for {
		start := time.Now()
		m, err := r.FetchMessage(ctx)
		if err == nil {
			retry.Succeeded()
			return m, true
		}
		if ctx.Err() != nil {
			return kafka.Message{}, false
		}
		if onError != nil {
			onError(err)
		}
		retry.Failed(err)
		if time.Since(start) >= instant {
			hot = 0
			continue
		}
		// A closed reader returns io.EOF at once, forever (errors from the
		// broker never come as io.EOF: kafka-go turns those into
		// io.ErrUnexpectedEOF); so would any failure it does not pace itself.
		if hot++; hot > hotErrors || errors.Is(err, io.EOF) {
			if !retry.Wait(ctx) {
				return kafka.Message{}, false
			}
		}
	}
}

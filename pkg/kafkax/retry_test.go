package kafkax

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// lines is a slog handler that keeps the messages logged.
type lines struct {
	mu   sync.Mutex
	msgs []string
}

func (l *lines) Enabled(context.Context, slog.Level) bool { return true }
func (l *lines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *lines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lines) WithGroup(string) slog.Handler      { return l }

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

// A burst of failures logs one line, not one per failure; the recovery is
// logged once.
func TestRetryLogsAFewLines(t *testing.T) {
	var l lines
	r := Retry{Log: slog.New(&l), What: "kafka fetch", Every: time.Hour}
	for range 10000 {
		r.Failed(errors.New("connection refused"))
	}
	if got := l.all(); len(got) != 1 || got[0] != "WARN kafka fetch failing, retrying" {
		t.Fatalf("logged %d lines: %q", len(got), got)
	}
	if r.Failures() != 10000 || r.Last() == nil {
		t.Fatalf("failures %d, last %v", r.Failures(), r.Last())
	}
	r.Succeeded()
	r.Succeeded()
	if got := l.all(); len(got) != 2 || got[1] != "INFO kafka fetch recovered" {
		t.Fatalf("after recovery: %q", got)
	}

	// While failing goes on, a summary at most once per Every.
	r.Every = 50 * time.Millisecond
	deadline := time.Now().Add(220 * time.Millisecond)
	for time.Now().Before(deadline) {
		r.Failed(errors.New("refused"))
		time.Sleep(time.Millisecond)
	}
	still := 0
	for _, m := range l.all() {
		if strings.Contains(m, "still failing") {
			still++
		}
	}
	if still < 2 || still > 5 {
		t.Fatalf("%d summaries over 220 ms at one per 50 ms", still)
	}
}

// The backoff doubles from Min to Max, each wait within ±50% of the current
// step, and a cancelled context ends a wait at once.
func TestRetryBackoff(t *testing.T) {
	r := Retry{Min: 20 * time.Millisecond, Max: 80 * time.Millisecond}
	ctx := context.Background()
	for i, step := range []time.Duration{20, 40, 80, 80} {
		step *= time.Millisecond
		start := time.Now()
		if !r.Wait(ctx) {
			t.Fatal("wait failed")
		}
		if d := time.Since(start); d < step/2 || d > step*3/2+50*time.Millisecond {
			t.Fatalf("wait %d took %s, want %s … %s", i, d, step/2, step*3/2)
		}
	}
	r.Succeeded()
	start := time.Now()
	r.Wait(ctx)
	if d := time.Since(start); d > 30*time.Millisecond+50*time.Millisecond {
		t.Fatalf("after a success the wait took %s, want ≤ 1.5 Min", d)
	}

	r = Retry{Min: time.Hour, Max: time.Hour}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if r.Wait(cctx) {
		t.Fatal("wait outlived its context")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancelled wait took %s", d)
	}
}

// Next on a reader that fails at once, forever (a closed one), backs off
// instead of spinning, and returns when its context ends.
func TestNextDoesNotSpin(t *testing.T) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{"127.0.0.1:1"}, GroupID: "g", Topic: "t"})
	r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	errs := 0
	start := time.Now()
	_, ok := Next(ctx, r, &Retry{Log: quiet, What: "fetch"}, func(error) { errs++ })
	if ok {
		t.Fatal("a message from a closed reader")
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 2*time.Second {
		t.Fatalf("Next returned after %s, want when its context ended (500 ms)", d)
	}
	if errs == 0 || errs > 20 {
		t.Fatalf("%d fetch attempts in 500 ms", errs)
	}
}

// Until retries a failing attempt until it succeeds, logging the outage
// and the recovery, and returns at once when ctx ends, so whoever starts
// it in the background can wait for it on shutdown.
func TestUntil(t *testing.T) {
	var l lines
	r := &Retry{Log: slog.New(&l), What: "topics", Min: time.Millisecond, Max: time.Millisecond}
	attempts := 0
	err := Until(context.Background(), r, func(context.Context) error {
		if attempts++; attempts < 3 {
			return errors.New("broker away")
		}
		return nil
	})
	if err != nil || attempts != 3 {
		t.Fatalf("Until: %v after %d attempts, want nil after 3", err, attempts)
	}
	if got := strings.Join(l.all(), "\n"); !strings.Contains(got, "topics failing") || !strings.Contains(got, "topics recovered") {
		t.Errorf("log:\n%s", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Until(ctx, &Retry{Log: slog.New(&l), What: "topics", Min: time.Hour}, func(context.Context) error { return errors.New("broker away") })
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Until did not return when its context ended")
	}
}

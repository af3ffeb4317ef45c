package kafkax

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/testkit"
)

var (
	errPoison = errors.New("the database refuses this record")
	errAway   = errors.New("the database is restarting")
)

// flaky publishes through a real producer after failing its first
// failFirst calls, and counts the calls.
type flaky struct {
	p         *Producer
	failFirst int32
	calls     atomic.Int32
}

func (f *flaky) Publish(ctx context.Context, msgs ...contract.Message) error {
	if f.calls.Add(1) <= f.failFirst {
		return errors.New("kafka produce: broker away")
	}
	return f.p.Publish(ctx, msgs...)
}

// handled collects what a handler handled, in order.
type handled struct {
	mu     sync.Mutex
	values []string
}

func (h *handled) add(batch []contract.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range batch {
		h.values = append(h.values, string(m.Value))
	}
}

func (h *handled) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.values)
}

// waitFor polls until h holds want, for up to 20 s.
func (h *handled) waitFor(t *testing.T, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Equal(h.get(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("handled %v, want %v", h.get(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deadLetterSetup makes a one-partition topic holding m0 … m9 (header h=v)
// and a dead-letter topic, and returns a consumer config for the topic
// whose handler errors are permanent when they wrap errPoison.
func deadLetterSetup(t *testing.T, reg *metrics.Registry, dlq Publisher) (ConsumerConfig, *Producer) {
	t.Helper()
	brokers := testkit.Kafka(t)
	topic, dead := testkit.TopicPrefix(t)+"in", testkit.TopicPrefix(t)+"dead"
	ctx := context.Background()
	if err := EnsureTopics(ctx, brokers, 1, 1, topic, dead); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(ProducerConfig{Brokers: brokers, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	var msgs []contract.Message
	for i := range 10 {
		msgs = append(msgs, contract.Message{Topic: topic, Key: []byte("k"), Value: []byte(fmt.Sprint("m", i)), Headers: map[string]string{"h": "v"}})
	}
	if err := p.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if f, ok := dlq.(*flaky); ok {
		f.p = p
	}
	return ConsumerConfig{
		Brokers: brokers, GroupID: topic + ".group", Topic: topic, Logger: quiet, Metrics: reg,
		Permanent:   func(err error) bool { return errors.Is(err, errPoison) },
		DeadLetter:  DeadLetter{Topic: dead, Stage: "test", Publisher: dlq},
		MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	}, p
}

// run runs a consumer with cfg and h until the test ends.
func run(t *testing.T, cfg ConsumerConfig, h Handler) {
	t.Helper()
	c, err := NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// A record the handler fails on permanently is tried MaxAttempts times in
// its batch, isolated, and published to the dead-letter topic as it was,
// with the reason, the stage and its origin; every other record is handled,
// in order, and the partition keeps flowing. The dead-letter publication is
// retried until Kafka takes it.
func TestPermanentFailureIsDeadLettered(t *testing.T) {
	reg := metrics.New("test")
	dlq := &flaky{failFirst: 2}
	cfg, p := deadLetterSetup(t, reg, dlq)
	var h handled
	run(t, cfg, func(_ context.Context, batch []contract.Message) error {
		for _, m := range batch {
			if string(m.Value) == "m3" {
				return fmt.Errorf("store: %w", errPoison)
			}
		}
		h.add(batch)
		return nil
	})
	want := []string{"m0", "m1", "m2", "m4", "m5", "m6", "m7", "m8", "m9"}
	h.waitFor(t, want)
	if err := p.Publish(context.Background(), contract.Message{Topic: cfg.Topic, Key: []byte("k"), Value: []byte("m10")}); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, append(want, "m10"))

	labels := map[string]string{"topic": cfg.Topic}
	wantMetric(t, reg, "eye_consumer_dead_lettered_total", labels, 1)
	wantMetric(t, reg, "eye_consumer_consecutive_failures", labels, 0)
	if n := dlq.calls.Load(); n != 3 {
		t.Errorf("%d dead-letter publications, want 3 (two failed)", n)
	}
	dead := consume(t, reg, cfg.Brokers, cfg.DeadLetter.Topic+".group", cfg.DeadLetter.Topic, 1, false)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	d := dead[0]
	if string(d.Value) != "m3" || string(d.Key) != "k" || d.Headers["h"] != "v" ||
		d.Headers[contract.HeaderDLQStage] != "test" ||
		d.Headers[contract.HeaderDLQSource] != cfg.Topic+"/0/3" ||
		!strings.Contains(d.Headers[contract.HeaderDLQReason], errPoison.Error()) {
		t.Errorf("dead letter %q %q %v", d.Key, d.Value, d.Headers)
	}
}

// An error that is not permanent (a dependency away) is retried, past
// MaxAttempts, until it passes: nothing is dead-lettered or skipped.
func TestTransientFailureIsRetriedUntilItPasses(t *testing.T) {
	reg := metrics.New("test")
	dlq := &flaky{}
	cfg, _ := deadLetterSetup(t, reg, dlq)
	var (
		h        handled
		failures atomic.Int32
	)
	run(t, cfg, func(_ context.Context, batch []contract.Message) error {
		if failures.Add(1) <= 4*int32(cfg.MaxAttempts) {
			return fmt.Errorf("store: %w", errAway)
		}
		h.add(batch)
		return nil
	})
	h.waitFor(t, []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"})
	labels := map[string]string{"topic": cfg.Topic}
	wantMetric(t, reg, "eye_consumer_handler_errors_total", labels, float64(4*cfg.MaxAttempts))
	wantMetric(t, reg, "eye_consumer_dead_lettered_total", labels, 0)
	wantMetric(t, reg, "eye_consumer_consecutive_failures", labels, 0)
	if n := dlq.calls.Load(); n != 0 {
		t.Errorf("%d dead-letter publications, want none", n)
	}
}

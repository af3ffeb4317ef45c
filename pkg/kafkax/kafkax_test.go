package kafkax

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, nil) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// consume runs a consumer in group until it has seen want messages or the
// timeout passes; fail makes the handler fail (and so not commit) each batch.
func consume(t *testing.T, reg *metrics.Registry, brokers []string, group, topic string, want int, fail bool) []contract.Message {
	t.Helper()
	c, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: group, Topic: topic, Logger: quiet, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		got []contract.Message
	)
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(_ context.Context, batch []contract.Message) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, batch...)
			if len(got) >= want {
				defer cancel()
			}
			if fail {
				return errors.New("handler failed")
			}
			return nil
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}

func TestProduceConsumeCommitsOnlyAfterSuccess(t *testing.T) {
	brokers := testkit.Kafka(t)
	topic := testkit.TopicPrefix(t) + "commits"
	ctx := context.Background()
	if err := EnsureTopics(ctx, brokers, 3, 1, topic); err != nil {
		t.Fatal(err)
	}
	reg := metrics.New("test")
	p, err := NewProducer(ProducerConfig{Brokers: brokers, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []contract.Message
	for i := range 30 {
		msgs = append(msgs, contract.Message{Topic: topic, Key: []byte(fmt.Sprintf("session-%d", i%4)), Value: []byte(fmt.Sprint(i)), Headers: map[string]string{"h": "v"}})
	}
	if err := p.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	group := topic + ".group"

	// A handler that fails commits nothing: the next member sees everything.
	if got := consume(t, reg, brokers, group, topic, 1, true); len(got) == 0 {
		t.Fatal("nothing consumed")
	}
	got := consume(t, reg, brokers, group, topic, len(msgs), false)
	if len(got) != len(msgs) {
		t.Fatalf("after a failed batch: %d messages, want all %d", len(got), len(msgs))
	}
	// Per key, order is kept and the key's partition is stable.
	last := map[string]int{}
	for _, m := range got {
		var n int
		fmt.Sscan(string(m.Value), &n)
		if prev, ok := last[string(m.Key)]; ok && n < prev {
			t.Fatalf("key %s: %d after %d", m.Key, n, prev)
		}
		last[string(m.Key)] = n
		if m.Headers["h"] != "v" {
			t.Fatalf("headers lost: %v", m.Headers)
		}
	}

	// Everything was committed: one more message is all a new member gets.
	if err := p.Publish(ctx, contract.Message{Topic: topic, Key: []byte("x"), Value: []byte("30")}); err != nil {
		t.Fatal(err)
	}
	if got := consume(t, reg, brokers, group, topic, 1, false); len(got) != 1 || string(got[0].Value) != "30" {
		t.Fatalf("after commit: got %d messages", len(got))
	}

	// Two Publish calls, 31 messages acknowledged; 31 handled: the failed
	// batch counts nothing.
	topicLabel := map[string]string{"topic": topic}
	wantMetric(t, reg, "eye_kafka_produce_duration_seconds", topicLabel, 2)
	wantMetric(t, reg, "eye_kafka_produced_messages_total", topicLabel, 31)
	wantMetric(t, reg, "eye_consumer_messages_total", topicLabel, 31)
}

func TestPublishFailsFastWithoutBroker(t *testing.T) {
	reg := metrics.New("test")
	p, err := NewProducer(ProducerConfig{Brokers: []string{"127.0.0.1:1"}, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Publish(ctx, contract.Message{Topic: "t", Value: []byte("v")}); err == nil {
		t.Fatal("publish to nowhere succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("publish took %s to fail", d)
	}
	wantMetric(t, reg, "eye_kafka_produce_errors_total", map[string]string{"topic": "t"}, 1)
	wantMetric(t, reg, "eye_kafka_produce_duration_seconds", map[string]string{"topic": "t"}, 1)
	if v, ok := metricValue(t, reg, "eye_kafka_produced_messages_total", nil); ok && v != 0 {
		t.Fatalf("failed publish counted %v produced messages", v)
	}
}

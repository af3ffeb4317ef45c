package kafkax

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/testkit"
)

// metricValue sums the samples of the family name whose labels include
// want: counter and gauge values, histogram sample counts. ok is false when
// no sample matches.
func metricValue(t *testing.T, reg *metrics.Registry, name string, want map[string]string) (v float64, ok bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, want) {
				continue
			}
			ok = true
			switch {
			case m.Counter != nil:
				v += m.Counter.GetValue()
			case m.Gauge != nil:
				v += m.Gauge.GetValue()
			case m.Histogram != nil:
				v += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return v, ok
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// wantMetric fails unless the metric's value (see metricValue) is want.
func wantMetric(t *testing.T, reg *metrics.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	if got, ok := metricValue(t, reg, name, labels); !ok || got != want {
		t.Fatalf("%s%v = %v (present: %t), want %v", name, labels, got, ok, want)
	}
}

// eventually polls the metric until it equals want, for up to 15 s.
func eventually(t *testing.T, reg *metrics.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, ok := metricValue(t, reg, name, labels)
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v (present: %t), want %v", name, labels, got, ok, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConsumerMetrics(t *testing.T) {
	brokers := testkit.Kafka(t)
	topic := testkit.TopicPrefix(t) + "metrics"
	group := topic + ".group"
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
	const n = 10
	var msgs []contract.Message
	for i := range n {
		msgs = append(msgs, contract.Message{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
	}
	if err := p.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	wantMetric(t, reg, "eye_kafka_produce_duration_seconds", map[string]string{"topic": topic, "service": "test"}, 1)
	wantMetric(t, reg, "eye_kafka_produced_messages_total", map[string]string{"topic": topic}, n)

	c, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: group, Topic: topic, Logger: quiet, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	proceed := make(chan struct{})
	var (
		mu       sync.Mutex
		attempts int
		got      int
	)
	allSeen := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, func(ctx context.Context, batch []contract.Message) error {
			select {
			case <-proceed:
			case <-ctx.Done():
				return ctx.Err()
			}
			mu.Lock()
			defer mu.Unlock()
			if attempts++; attempts <= 2 {
				return errors.New("not yet")
			}
			if got += len(batch); got == n {
				close(allSeen)
			}
			return nil
		})
	}()

	// Nothing committed yet: the whole topic is lag.
	lagLabels := map[string]string{"topic": topic, "group": group}
	eventually(t, reg, "eye_consumer_lag", lagLabels, n)
	close(proceed)
	select {
	case <-allSeen:
	case <-runCtx.Done():
		t.Fatal("not every message was handled")
	}
	// Everything committed: the lag drops to zero soon after the last batch.
	eventually(t, reg, "eye_consumer_lag", lagLabels, 0)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	topicLabel := map[string]string{"topic": topic}
	wantMetric(t, reg, "eye_consumer_handler_errors_total", topicLabel, 2)
	wantMetric(t, reg, "eye_consumer_messages_total", topicLabel, n)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var batchSum float64
	for _, f := range families {
		if f.GetName() == "eye_consumer_batch_size" {
			for _, m := range f.GetMetric() {
				if hasLabels(m, topicLabel) {
					batchSum += m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	if batchSum != n {
		t.Fatalf("batch sizes add up to %v, want %d (a retried batch counts once)", batchSum, n)
	}
}

func TestConsumerReady(t *testing.T) {
	reg := metrics.New("test")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	up, err := NewConsumer(ConsumerConfig{Brokers: testkit.Kafka(t), GroupID: "g", Topic: "t", Logger: quiet, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Ready(ctx); err != nil {
		t.Fatalf("ready with a broker: %v", err)
	}
	down, err := NewConsumer(ConsumerConfig{Brokers: []string{"127.0.0.1:1"}, GroupID: "g", Topic: "t", Logger: quiet, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := down.Ready(ctx); err == nil {
		t.Fatal("ready without a broker")
	}
}

// A broker that accepts connections but never answers fails Ping when the
// context ends, not never.
func TestPingHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	for name, mk := range map[string]func() (context.Context, context.CancelFunc){
		"deadline": func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		},
		"cancel": func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := mk()
			defer cancel()
			start := time.Now()
			if err := Ping(ctx, []string{ln.Addr().String()}); err == nil {
				t.Fatal("ping of a silent broker succeeded")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("ping took %s", d)
			}
		})
	}
}

func TestMetricsAreSharedBetweenConsumers(t *testing.T) {
	reg := metrics.New("test")
	for _, topic := range []string{"a", "b", "a"} {
		if _, err := NewConsumer(ConsumerConfig{Brokers: []string{"127.0.0.1:1"}, GroupID: "g." + topic, Topic: topic, Logger: quiet, Metrics: reg}); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range []string{"a", "b"} {
		wantMetric(t, reg, "eye_consumer_messages_total", map[string]string{"topic": topic}, 0)
	}
	if _, err := NewConsumer(ConsumerConfig{Brokers: []string{"127.0.0.1:1"}, GroupID: "g", Topic: "t", Logger: quiet}); err == nil {
		t.Fatal("consumer without a registry")
	}
	if _, err := NewProducer(ProducerConfig{Brokers: []string{"127.0.0.1:1"}}); err == nil {
		t.Fatal("producer without a registry")
	}
}

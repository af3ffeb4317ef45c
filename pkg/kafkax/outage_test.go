package kafkax

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/metrics"
)

// broker is a kfake broker of its own (not the test binary's shared one),
// which a test can stop and start again on the same port and data, as a
// broker restart.
type broker struct {
	t    *testing.T
	port int
	dir  string
	mu   sync.Mutex
	k    *devstack.Kafka
}

func newBroker(t *testing.T) *broker {
	t.Helper()
	b := &broker{t: t, port: freePort(t), dir: t.TempDir()}
	t.Cleanup(b.stop)
	return b
}

func (b *broker) addrs() []string { return []string{"127.0.0.1:" + strconv.Itoa(b.port)} }

func (b *broker) start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	// The port was just released by the previous broker; a moment's retry
	// covers a slow release.
	for range 50 {
		if b.k, err = devstack.StartKafka(b.dir, b.port); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("start broker on %d: %v", b.port, err)
}

func (b *broker) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.k != nil {
		b.k.Close()
		b.k = nil
	}
}

// freePort is a TCP port nothing listens on (at the time of asking).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// committed is the group's committed offset per partition of topic, minus
// the end offset: 0 everywhere once everything is committed.
func uncommitted(ctx context.Context, brokers []string, group, topic string) (int64, error) {
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second, Transport: tr}
	c := &Consumer{cfg: ConsumerConfig{Topic: topic, GroupID: group}, lagClient: cl}
	return c.groupLag(ctx)
}

// TestConsumerRidesOutBrokerRestart: the broker goes away with a batch
// handled but not committed, and comes back on the same port and data. Run
// keeps going, handles everything produced before and after, and commits it
// all: nothing is lost or skipped, and the batch whose commit failed is
// handled again (at-least-once) or covered by a later commit.
func TestConsumerRidesOutBrokerRestart(t *testing.T) {
	b := newBroker(t)
	b.start()
	brokers := b.addrs()
	topic, group := "outage", "outage.group"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, brokers, 3, 1, topic); err != nil {
		t.Fatal(err)
	}
	reg := metrics.New("test")
	prod, err := NewProducer(ProducerConfig{Brokers: brokers, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	publish := func(from, to int) {
		t.Helper()
		var msgs []contract.Message
		for i := from; i < to; i++ {
			msgs = append(msgs, contract.Message{Topic: topic, Key: []byte(fmt.Sprint("k", i%5)), Value: []byte(strconv.Itoa(i))})
		}
		// The producer's own retries may not outlast a broker that just came
		// back: retry as a client would.
		for {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			err := prod.Publish(pctx, msgs...)
			pcancel()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %d..%d: %v", from, to, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The broker keeps the group's member across its restart, and the
	// member that rejoins afterwards waits for that one's session to expire:
	// the shortest the broker allows keeps the test short.
	c, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: group, Topic: topic, Logger: quiet, Metrics: reg, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		seen    = map[int]int{} // value → times handled
		changed = make(chan struct{}, 1)
		block   = make(chan struct{}) // closed once the broker is down
	)
	const blocker = 20 // the batch holding this value returns only once the broker is down
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, func(ctx context.Context, batch []contract.Message) error {
			for _, m := range batch {
				if v, _ := strconv.Atoi(string(m.Value)); v == blocker {
					select {
					case <-block:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			mu.Lock()
			for _, m := range batch {
				v, _ := strconv.Atoi(string(m.Value))
				seen[v]++
			}
			mu.Unlock()
			select {
			case changed <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	waitAll := func(n int, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			mu.Lock()
			missing := -1
			for i := range n {
				if seen[i] == 0 {
					missing = i
					break
				}
			}
			mu.Unlock()
			if missing < 0 {
				return
			}
			select {
			case <-changed:
			case <-time.After(50 * time.Millisecond):
			case err := <-done:
				t.Fatalf("Run returned %v with message %d not handled", err, missing)
			case <-deadline:
				t.Fatalf("message %d not handled within %s", missing, within)
			}
		}
	}

	publish(0, blocker)
	waitAll(blocker, 20*time.Second)
	publish(blocker, blocker+1) // handled, not committed: the broker goes first
	time.Sleep(300 * time.Millisecond)
	b.stop()
	close(block)
	readyCtx, readyCancel := context.WithTimeout(ctx, time.Second)
	if err := c.Ready(readyCtx); err == nil {
		t.Error("ready while the broker is down")
	}
	readyCancel()
	// The outage lasts until kafka-go has reported fetch errors (about 3 s:
	// its group loop gives up joining three times first), which used to end
	// Run, and a little more.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if v, _ := metricValue(t, reg, "eye_consumer_fetch_errors_total", map[string]string{"topic": topic}); v > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no fetch error counted during the outage")
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned during the outage: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned during the outage: %v", err)
	case <-time.After(500 * time.Millisecond):
	}

	b.start()
	restarted := time.Now()
	publish(blocker+1, 40)
	t.Logf("published %s after the broker came back", time.Since(restarted).Round(time.Millisecond))
	waitAll(40, 40*time.Second)
	t.Logf("everything handled %s after the broker came back", time.Since(restarted).Round(time.Millisecond))
	// Everything is committed, not only handled: a new member would start at
	// the end.
	for {
		lag, err := uncommitted(ctx, brokers, group, topic)
		if err == nil && lag == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("uncommitted messages: %d (%v)", lag, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("everything committed %s after the broker came back", time.Since(restarted).Round(time.Millisecond))
	mu.Lock()
	redelivered := seen[blocker] > 1
	mu.Unlock()
	t.Logf("batch whose commit failed handled again: %t", redelivered)
	// The lag watcher came back too.
	eventually(t, reg, "eye_consumer_lag", map[string]string{"topic": topic, "group": group}, 0)

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

// TestRunStopsDuringOutage: cancelling Run while the broker is away ends it
// at once (no wait for a broker, nor for kafka-go's timeouts).
func TestRunStopsDuringOutage(t *testing.T) {
	b := newBroker(t)
	b.start()
	brokers := b.addrs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := "stop"
	if err := EnsureTopics(ctx, brokers, 2, 1, topic); err != nil {
		t.Fatal(err)
	}
	reg := metrics.New("test")
	prod, err := NewProducer(ProducerConfig{Brokers: brokers, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.Publish(ctx, contract.Message{Topic: topic, Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	c, err := NewConsumer(ConsumerConfig{Brokers: brokers, GroupID: "stop.group", Topic: topic, Logger: quiet, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	handled := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, func(context.Context, []contract.Message) error {
			select {
			case handled <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	select {
	case <-handled:
	case err := <-done:
		t.Fatalf("Run returned %v", err)
	case <-ctx.Done():
		t.Fatal("nothing handled")
	}
	b.stop()
	time.Sleep(2 * time.Second) // well into the outage: the reader is retrying
	start := time.Now()
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("Run took %s to stop", d)
		}
		t.Logf("Run stopped %s after cancel", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop within 5 s of its context's end")
	}
}

// TestEnsureTopicsWaitsForBroker: started while nothing listens, EnsureTopics
// succeeds once a broker appears within its context; if none does, it fails
// when the context ends, saying what it waited for and why.
func TestEnsureTopicsWaitsForBroker(t *testing.T) {
	t.Run("broker appears", func(t *testing.T) {
		b := newBroker(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- EnsureTopics(ctx, b.addrs(), 4, 1, "a", "b") }()
		go func() { done <- EnsureCompactedTopic(ctx, b.addrs(), 1, "c") }()
		time.Sleep(1500 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("returned without a broker: %v", err)
		default:
		}
		b.start()
		for range 2 {
			if err := <-done; err != nil {
				t.Fatalf("after the broker came: %v", err)
			}
		}
		t.Logf("topics ready %s after the broker started", time.Since(start)-1500*time.Millisecond)
		md, err := (&kafka.Client{Addr: kafka.TCP(b.addrs()...)}).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"a", "b", "c"}})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"a": 4, "b": 4, "c": 1}
		for _, tp := range md.Topics {
			if len(tp.Partitions) != want[tp.Name] {
				t.Errorf("topic %s has %d partitions, want %d", tp.Name, len(tp.Partitions), want[tp.Name])
			}
		}
	})
	t.Run("no broker", func(t *testing.T) {
		brokers := []string{"127.0.0.1:" + strconv.Itoa(freePort(t))}
		for name, ensure := range map[string]func(context.Context) error{
			"topics":    func(ctx context.Context) error { return EnsureTopics(ctx, brokers, 1, 1, "a", "b") },
			"compacted": func(ctx context.Context) error { return EnsureCompactedTopic(ctx, brokers, 1, "c") },
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
			start := time.Now()
			err := ensure(ctx)
			cancel()
			if err == nil {
				t.Fatalf("%s: ensured without a broker", name)
			}
			if d := time.Since(start); d < 600*time.Millisecond || d > 3*time.Second {
				t.Errorf("%s: gave up after %s, want when the context ends (700 ms)", name, d)
			}
			msg := err.Error()
			for _, want := range []string{"not ready after", brokers[0], "connection refused", context.DeadlineExceeded.Error()} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: error %q does not mention %q", name, msg, want)
				}
			}
			t.Logf("%s: %v", name, err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		b := newBroker(t)
		b.start()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := EnsureTopics(ctx, b.addrs(), 0, 1, "no-partitions")
		if err == nil || !errors.Is(err, kafka.InvalidPartitionNumber) {
			t.Fatalf("0 partitions: %v, want Invalid Partition Number", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("a refusal was retried for %s: %v", d, err)
		}
	})
}

package schema

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/metrics"
)

// TestFollowerRidesOutBrokerRestart: the follower's broker goes away and
// comes back on the same port and data. Run keeps going (it used to return
// the first read error, and the validator with it), picks up a version
// published after the restart, and stops promptly when cancelled, even
// during an outage.
func TestFollowerRidesOutBrokerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	var k *devstack.Kafka
	start := func() {
		t.Helper()
		for range 50 { // the port may take a moment to be released
			if k, err = devstack.StartKafka(dir, port); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("start broker: %v", err)
	}
	stop := func() {
		if k != nil {
			k.Close()
			k = nil
		}
	}
	start()
	t.Cleanup(stop)
	brokers := []string{"127.0.0.1:" + strconv.Itoa(port)}
	topic := "schemas.v1"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkax.EnsureCompactedTopic(ctx, brokers, 1, topic); err != nil {
		t.Fatal(err)
	}
	prod, err := kafkax.NewProducer(kafkax.ProducerConfig{Brokers: brokers, Metrics: metrics.New("test")})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	publish := func(m contract.Message) {
		t.Helper()
		for { // the producer may need a moment after a restart
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			err := prod.Publish(pctx, m)
			pcancel()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	publish(schemaMsg(t, topic, "c", "n", 1, `{}`))

	reg := NewRegistry()
	f, err := NewFollower(FollowerConfig{Brokers: brokers, Topic: topic, Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	select {
	case <-f.Synced():
	case err := <-done:
		t.Fatalf("Run returned %v before syncing", err)
	case <-ctx.Done():
		t.Fatal("never synced")
	}

	stop()
	time.Sleep(2 * time.Second) // the reader has failed to reconnect a few times
	select {
	case err := <-done:
		t.Fatalf("Run returned during the outage: %v", err)
	default:
	}
	start()
	restarted := time.Now()
	publish(schemaMsg(t, topic, "c", "n", 2, `{"required": ["a"]}`))
	waitFor(t, ctx, "version 2 after the restart", func() bool { s, err := reg.Lookup(Type{"c", "n"}, 0); return err == nil && s.Version == 2 })
	t.Logf("version 2 loaded %s after the broker came back", time.Since(restarted).Round(time.Millisecond))

	// Cancelled during an outage, Run ends at once.
	stop()
	time.Sleep(time.Second)
	cancelled := time.Now()
	stopRun()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if d := time.Since(cancelled); d > 1500*time.Millisecond {
			t.Fatalf("Run took %s to stop", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

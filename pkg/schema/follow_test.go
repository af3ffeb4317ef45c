package schema

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/testkit"
)

func schemaMsg(t *testing.T, topic, category, name string, version int, src string) contract.Message {
	t.Helper()
	m, err := contract.Encode(topic, contract.SchemaKey(category, name, version), &contract.Schema{
		Category: category, Name: name, Version: version, Schema: json.RawMessage(src), CreatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFollowerHotReload: a follower loads what is on the topic before it
// reports synced, then picks up new versions and deletions as they come.
func TestFollowerHotReload(t *testing.T) {
	brokers := testkit.Kafka(t)
	topic := testkit.TopicPrefix(t) + "schemas.v1"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkax.EnsureCompactedTopic(ctx, brokers, 1, topic); err != nil {
		t.Fatal(err)
	}
	if err := kafkax.EnsureCompactedTopic(ctx, brokers, 1, topic); err != nil {
		t.Fatalf("ensuring an existing topic: %v", err)
	}
	prod, err := kafkax.NewProducer(kafkax.ProducerConfig{Brokers: brokers, Metrics: metrics.New("test")})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.Publish(ctx,
		schemaMsg(t, topic, "c", "n", 1, `{"required": ["a"]}`),
		contract.Message{Topic: topic, Key: []byte("junk"), Value: []byte("not an envelope")},
		schemaMsg(t, topic, "c", "n", 2, `{"type": 12}`), // does not compile: skipped
		schemaMsg(t, topic, "c/d", "n", 1, `{}`),
	); err != nil {
		t.Fatal(err)
	}

	reg := NewRegistry()
	f, err := NewFollower(FollowerConfig{Brokers: brokers, Topic: topic, Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if f.Ready(ctx) == nil {
		t.Fatal("ready before running")
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	select {
	case <-f.Synced():
	case <-ctx.Done():
		t.Fatal("never synced")
	}
	if err := f.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := reg.Refs(), []Ref{{"c", "n", 1}, {"c/d", "n", 1}}; !slices.Equal(got, want) {
		t.Fatalf("synced with %v, want %v", got, want)
	}

	start := time.Now()
	if err := prod.Publish(ctx, schemaMsg(t, topic, "c", "n", 3, `{"required": ["b"]}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "version 3", func() bool { s, err := reg.Lookup(Type{"c", "n"}, 0); return err == nil && s.Version == 3 })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("version 3 took %s to load", d)
	}
	if err := prod.Publish(ctx, contract.Message{Topic: topic, Key: []byte(contract.SchemaKey("c/d", "n", 1))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "c/d removed", func() bool { _, err := reg.Lookup(Type{"c/d", "n"}, 0); return err != nil })

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

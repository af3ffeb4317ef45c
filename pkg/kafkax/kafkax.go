// Package kafkax holds The Eye's kafka-go plumbing with the delivery
// contract built in: producers that wait for acks from all in-sync replicas
// and partition by key the way Java clients do, and consumers that commit
// offsets only after a batch was handled. Both record their eye_kafka_* and
// eye_consumer_* metrics on the registry their configuration names.
package kafkax

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
)

// Brokers parses a comma-separated broker list.
func Brokers(list string) []string {
	var out []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// EnsureTopics creates the topics that do not exist yet, with the given
// partition count and replication factor 1 (use -1 for the broker default),
// and waits until each one has a leader for every partition.
func EnsureTopics(ctx context.Context, brokers []string, partitions, replication int, topics ...string) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: replication})
	}
	res, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for t, err := range res.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	for {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		if err == nil && topicsReady(md, len(topics)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topics %v: %w", topics, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func topicsReady(md *kafka.MetadataResponse, want int) bool {
	if len(md.Topics) != want {
		return false
	}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false
			}
		}
	}
	return true
}

// Ping checks that at least one broker answers a metadata request before
// ctx ends.
func Ping(ctx context.Context, brokers []string) error {
	var d net.Dialer
	var last error
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			last = err
			continue
		}
		// A broker that accepts connections but never answers must not
		// outlive ctx.
		kc := kafka.NewConn(conn, "", 0)
		if deadline, ok := ctx.Deadline(); ok {
			_ = kc.SetDeadline(deadline)
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		_, err = kc.Brokers()
		stop()
		kc.Close()
		if err == nil {
			return nil
		}
		last = err
	}
	if last == nil {
		last = errors.New("no brokers configured")
	}
	return fmt.Errorf("kafka unreachable: %w", last)
}

// toKafka converts contract messages to kafka-go messages.
func toKafka(msgs []contract.Message) []kafka.Message {
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km := kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value}
		for k, v := range m.Headers {
			km.Headers = append(km.Headers, kafka.Header{Key: k, Value: []byte(v)})
		}
		out[i] = km
	}
	return out
}

// fromKafka converts a consumed kafka-go message to a contract message.
func fromKafka(m kafka.Message) contract.Message {
	out := contract.Message{Topic: m.Topic, Key: m.Key, Value: m.Value, Partition: m.Partition, Offset: m.Offset}
	if len(m.Headers) > 0 {
		out.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			out.Headers[h.Key] = string(h.Value)
		}
	}
	return out
}

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
// partition count and replication factor (use -1 for the broker default),
// and waits until each one has a leader for every partition. A broker that
// is not there yet, or still starting, is waited for until ctx ends; the
// error then says what was being waited for and the last failure. Requests
// the broker refuses for good (an invalid topic name or partition count, a
// topic config it rejects, missing authorisation) fail at once.
func EnsureTopics(ctx context.Context, brokers []string, partitions, replication int, topics ...string) error {
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: replication})
	}
	return ensure(ctx, brokers, "topics "+strings.Join(topics, ", "), req, topics)
}

// ensure sends req (a CreateTopics request for topics) until the topics
// exist, then waits until they have leaders, retrying what can pass.
func ensure(ctx context.Context, brokers []string, what string, req *kafka.CreateTopicsRequest, topics []string) error {
	start := time.Now()
	retry := Retry{Min: 100 * time.Millisecond, Max: time.Second}
	created := false
	for {
		err := ensureOnce(ctx, brokers, req, topics, &created)
		if err == nil {
			return nil
		}
		if refused(err) {
			return fmt.Errorf("kafka %s: %w", what, err)
		}
		if ctx.Err() != nil || !retry.Wait(ctx) {
			return fmt.Errorf("kafka %s not ready after %s (brokers %s): %w; last error: %w",
				what, time.Since(start).Round(time.Millisecond), strings.Join(brokers, ","), ctx.Err(), err)
		}
	}
}

// ensureOnce makes one attempt: create (until that succeeded once), then
// check the leaders. It goes through kafka-go's default transport, which the
// producers share: asking for the topics' metadata there refreshes what
// they cache, so a producer of this process sees the new topics at once.
func ensureOnce(ctx context.Context, brokers []string, req *kafka.CreateTopicsRequest, topics []string, created *bool) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	if !*created {
		res, err := client.CreateTopics(ctx, req)
		if err != nil {
			return fmt.Errorf("create: %w", withDialError(ctx, brokers, err))
		}
		for t, err := range res.Errors {
			if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
				return fmt.Errorf("create %s: %w", t, err)
			}
		}
		*created = true
	}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("metadata: %w", withDialError(ctx, brokers, err))
	}
	return topicsReady(md, topics)
}

// withDialError adds why no broker could be reached to err when kafka-go's
// client reports only "Broker Not Available", which is what it says when it
// cannot connect at all.
func withDialError(ctx context.Context, brokers []string, err error) error {
	if !errors.Is(err, kafka.BrokerNotAvailable) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	var errs []error
	for _, b := range brokers {
		conn, derr := d.DialContext(ctx, "tcp", b)
		if derr == nil {
			conn.Close()
			return err // reachable: the broker itself is not ready
		}
		errs = append(errs, derr)
	}
	return fmt.Errorf("%w (%w)", err, errors.Join(errs...))
}

// refused reports whether err is an answer the broker will give again
// however long we wait. Everything else is retried, including "Broker Not
// Available" and "Invalid Replication Factor", which a KRaft broker answers
// while it is starting and not yet registered with its controller.
func refused(err error) bool {
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return false
	}
	switch kerr {
	case kafka.InvalidTopic, kafka.InvalidPartitionNumber, kafka.InvalidReplicaAssignment,
		kafka.InvalidConfiguration, kafka.InvalidRequest, kafka.PolicyViolation,
		kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed,
		kafka.UnsupportedVersion, kafka.UnsupportedSASLMechanism, kafka.SASLAuthenticationFailed:
		return true
	}
	return false
}

// topicsReady returns nil when md has every topic with a leader for each
// partition, else what is missing.
func topicsReady(md *kafka.MetadataResponse, topics []string) error {
	byName := make(map[string]kafka.Topic, len(md.Topics))
	for _, t := range md.Topics {
		byName[t.Name] = t
	}
	for _, name := range topics {
		t, ok := byName[name]
		switch {
		case !ok:
			return fmt.Errorf("topic %s not in the metadata yet", name)
		case t.Error != nil:
			return fmt.Errorf("topic %s: %w", name, t.Error)
		case len(t.Partitions) == 0:
			return fmt.Errorf("topic %s has no partitions yet", name)
		}
		for _, p := range t.Partitions {
			if p.Error != nil {
				return fmt.Errorf("topic %s partition %d: %w", name, p.ID, p.Error)
			}
			if p.Leader.Host == "" {
				return fmt.Errorf("topic %s partition %d has no leader yet", name, p.ID)
			}
		}
	}
	return nil
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

// ToKafka converts contract messages to kafka-go messages.
func ToKafka(msgs []contract.Message) []kafka.Message {
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

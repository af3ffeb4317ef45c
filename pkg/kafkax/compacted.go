package kafkax

import (
	"context"

	"github.com/segmentio/kafka-go"
)

// EnsureCompactedTopic creates topic, if it does not exist yet, with one
// partition, the given replication factor (-1 for the broker default) and
// cleanup.policy=compact: the latest record of every key is kept forever,
// so a reader that starts from the first offset sees the current state. It
// waits until the partition has a leader. An existing topic is left as it
// is. Like EnsureTopics, it waits for a broker that is away or starting
// until ctx ends.
func EnsureCompactedTopic(ctx context.Context, brokers []string, replication int, topic string) error {
	req := &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: replication,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	}}}
	return ensure(ctx, brokers, "compacted topic "+topic, req, []string{topic})
}

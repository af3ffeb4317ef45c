package kafkax

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestWriterPartitionsLikeJava: keyed records land where the Java client's
// default partitioner puts them, (murmur2(key) & 0x7fffffff) % partitions,
// checked with murmur2 values of Kafka's own Utils tests and the worked
// example of docs/topics.md (Keys and partitioning), which producers in
// other languages use to check their setting.
func TestWriterPartitionsLikeJava(t *testing.T) {
	for _, tc := range []struct {
		key        string
		murmur2    int32 // org.apache.kafka.common.utils.Utils.murmur2
		partitions int
	}{
		{"21", -973932308, 6},
		{"abc", 479470107, 6},
		{"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058", -283378695, 6}, // docs/topics.md: partition 5 of 6
		{"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058", -283378695, 3}, // partition 2 of 3
	} {
		ids := make([]int, tc.partitions)
		for i := range ids {
			ids[i] = i
		}
		want := int((uint32(tc.murmur2) & 0x7fffffff) % uint32(tc.partitions))
		if got := NewWriter("localhost:9092").Balancer.Balance(kafka.Message{Key: []byte(tc.key)}, ids...); got != want {
			t.Errorf("key %q: partition %d of %d, Java's default partitioner: %d", tc.key, got, tc.partitions, want)
		}
	}
}

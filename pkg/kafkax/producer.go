package kafkax

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
)

// Producer publishes contract messages synchronously: Publish returns nil
// only once every message was acknowledged by all in-sync replicas.
type Producer struct {
	w *kafka.Writer
}

// NewProducer returns a producer for brokers. The kafka-go defaults are
// wrong for an acknowledging pipeline and are all overridden here:
// RequiredAcks (default: none), Balancer (default round-robin ignores keys;
// Murmur2 places keys where Java clients would), BatchTimeout (default 1 s
// of added latency).
func NewProducer(brokers []string) (*Producer, error) {
	if len(brokers) == 0 {
		return nil, fmt.Errorf("kafkax: no brokers")
	}
	return &Producer{w: &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    1000,
		BatchBytes:   16 << 20,
		MaxAttempts:  5,
		WriteTimeout: 10 * time.Second,
		ReadTimeout:  10 * time.Second,
	}}, nil
}

// Publish writes msgs and waits for their acknowledgement or ctx's end.
// Messages with the same key keep their relative order.
func (p *Producer) Publish(ctx context.Context, msgs ...contract.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := p.w.WriteMessages(ctx, toKafka(msgs)...); err != nil {
		return fmt.Errorf("kafka produce: %w", err)
	}
	return nil
}

// Close flushes and closes the producer.
func (p *Producer) Close() error { return p.w.Close() }

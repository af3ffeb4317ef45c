package kafkax

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/metrics"
)

// ProducerConfig configures a Producer.
type ProducerConfig struct {
	Brokers []string
	Metrics *metrics.Registry // where the eye_kafka_produce* metrics go (required)
}

// Producer publishes contract messages synchronously: Publish returns nil
// only once every message was acknowledged by all in-sync replicas.
type Producer struct {
	w        *kafka.Writer
	duration *prometheus.HistogramVec // by topic label
	produced *prometheus.CounterVec   // by message topic
	errs     *prometheus.CounterVec   // by topic label
}

// mixedTopics labels a Publish call whose messages go to several topics.
const mixedTopics = "mixed"

// NewProducer returns a producer for cfg.Brokers. The kafka-go defaults are
// wrong for an acknowledging pipeline and are all overridden here:
// RequiredAcks (default: none), Balancer (default round-robin ignores keys;
// Murmur2 places keys where Java clients would), BatchTimeout (default 1 s
// of added latency).
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("kafkax: no brokers")
	case cfg.Metrics == nil:
		return nil, errors.New("kafkax: producer needs a metrics registry")
	}
	return &Producer{
		w: NewWriter(cfg.Brokers...),
		duration: cfg.Metrics.Histogram("eye_kafka_produce_duration_seconds",
			"Time a Publish call took, acknowledged or failed, by topic (mixed: several topics in one call).",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			"topic"),
		produced: cfg.Metrics.Counter("eye_kafka_produced_messages_total",
			"Messages acknowledged by Kafka, by topic.", "topic"),
		errs: cfg.Metrics.Counter("eye_kafka_produce_errors_total",
			"Publish calls that failed (not every message was acknowledged), by topic (mixed: several topics in one call).",
			"topic"),
	}, nil
}

// NewWriter returns the kafka-go writer every Producer uses, for code that
// must produce exactly as the services do (the benchmark's physical
// limit): acks from all in-sync replicas, Murmur2 partitioning, a 2 ms
// batch timeout, 1 000 messages or 1 MB per batch.
func NewWriter(brokers ...string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		BatchSize:    1000,
		// Below the broker's default record-batch limit (message.max.bytes,
		// 1 MiB): a larger batch would be refused whole and retried forever.
		BatchBytes:   1_000_000,
		MaxAttempts:  5,
		WriteTimeout: 10 * time.Second,
		ReadTimeout:  10 * time.Second,
		// A transport of its own: kafka-go's default one is shared by the
		// whole process and caches topic metadata for 6 s, so a writer made
		// after its topics were created could be refused them
		// (UnknownTopicOrPartition) because another client of the process
		// looked before they existed.
		Transport: &kafka.Transport{},
	}
}

// Publish writes msgs and waits for their acknowledgement or ctx's end.
// Messages with the same key keep their relative order.
func (p *Producer) Publish(ctx context.Context, msgs ...contract.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	topic := topicLabel(msgs)
	start := time.Now()
	err := p.w.WriteMessages(ctx, ToKafka(msgs)...)
	p.duration.WithLabelValues(topic).Observe(time.Since(start).Seconds())
	p.countProduced(msgs, err)
	if err != nil {
		p.errs.WithLabelValues(topic).Inc()
		return fmt.Errorf("kafka produce: %w", err)
	}
	return nil
}

// countProduced counts the acknowledged messages among msgs: all of them
// when err is nil, those without an error when err reports per message.
func (p *Producer) countProduced(msgs []contract.Message, err error) {
	var perMsg kafka.WriteErrors
	if err != nil && (!errors.As(err, &perMsg) || len(perMsg) != len(msgs)) {
		return
	}
	for i, m := range msgs {
		if perMsg == nil || perMsg[i] == nil {
			p.produced.WithLabelValues(m.Topic).Inc()
		}
	}
}

// topicLabel is the topic of msgs if they share one, else "mixed".
func topicLabel(msgs []contract.Message) string {
	topic := msgs[0].Topic
	for _, m := range msgs[1:] {
		if m.Topic != topic {
			return mixedTopics
		}
	}
	return topic
}

// Close flushes and closes the producer.
func (p *Producer) Close() error { return p.w.Close() }

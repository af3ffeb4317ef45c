package kafkax

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
)

// Handler processes a batch of consumed messages. It returns nil once every
// message is durably handled; the batch's offsets are then committed. An
// error means nothing was committed: the same batch is retried after a
// backoff. A handler must therefore turn messages it can never handle into
// error records itself rather than fail on them forever.
type Handler func(ctx context.Context, batch []contract.Message) error

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	Brokers  []string
	GroupID  string
	Topic    string
	MaxBatch int           // most messages per batch (default 500)
	Linger   time.Duration // how long to wait to fill a batch (default 5 ms)
	Logger   *slog.Logger
}

// Consumer reads a topic in a consumer group and feeds batches to a Handler,
// committing offsets only after the handler succeeded (at-least-once).
type Consumer struct {
	cfg ConsumerConfig
	r   *kafka.Reader
}

// NewConsumer validates cfg and returns a consumer; it connects lazily.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("kafkax: no brokers")
	case cfg.GroupID == "" || cfg.Topic == "":
		return nil, errors.New("kafkax: consumer needs a group and a topic")
	case cfg.Logger == nil:
		return nil, errors.New("kafkax: consumer needs a logger")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 5 * time.Millisecond
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        cfg.Brokers,
		GroupID:        cfg.GroupID,
		Topic:          cfg.Topic,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        250 * time.Millisecond,
		StartOffset:    kafka.FirstOffset, // a new group reads from the start: nothing is skipped
		CommitInterval: 0,                 // synchronous commits
		ErrorLogger:    kafka.LoggerFunc(func(msg string, args ...any) { cfg.Logger.Debug("kafka reader", "msg", fmt.Sprintf(msg, args...)) }),
	})
	return &Consumer{cfg: cfg, r: r}, nil
}

// Run consumes until ctx is cancelled, then closes the reader. It returns
// nil on cancellation.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	defer c.r.Close()
	fetched := make(chan kafka.Message, c.cfg.MaxBatch)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(fetched)
		for {
			m, err := c.r.FetchMessage(ctx)
			if err != nil {
				fetchErr <- err
				return
			}
			select {
			case fetched <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	log := c.cfg.Logger.With("topic", c.cfg.Topic, "group", c.cfg.GroupID)
	for {
		first, ok := <-fetched
		if !ok {
			select {
			case err := <-fetchErr:
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("kafka fetch %s: %w", c.cfg.Topic, err)
			default:
				return nil
			}
		}
		batch := c.fill(ctx, first, fetched)
		msgs := make([]contract.Message, len(batch))
		for i, m := range batch {
			msgs[i] = fromKafka(m)
		}
		if err := c.handle(ctx, log, h, msgs); err != nil {
			return nil // only ctx cancellation ends handle with an error
		}
		// A handled batch is committed even when shutdown has begun, so a
		// clean stop redelivers nothing.
		commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := c.r.CommitMessages(commitCtx, batch...)
		cancel()
		if err != nil {
			// After a rebalance the partition may belong to another member,
			// which will redeliver from the last commit: sinks are idempotent.
			log.Warn("commit failed", "err", err, "messages", len(batch))
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// fill collects up to MaxBatch messages, waiting at most Linger for more.
func (c *Consumer) fill(ctx context.Context, first kafka.Message, fetched <-chan kafka.Message) []kafka.Message {
	batch := []kafka.Message{first}
	timer := time.NewTimer(c.cfg.Linger)
	defer timer.Stop()
	for len(batch) < c.cfg.MaxBatch {
		select {
		case m, ok := <-fetched:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		case <-timer.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// handle runs h until it succeeds, backing off exponentially between
// attempts; it fails only when ctx ends.
func (c *Consumer) handle(ctx context.Context, log *slog.Logger, h Handler, msgs []contract.Message) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := h(ctx, msgs)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Error("batch failed, retrying", "err", err, "attempt", attempt, "messages", len(msgs), "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

package kafkax

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/metrics"
)

// Handler processes a batch of consumed messages. It returns nil once every
// message is durably handled; the batch's offsets are then committed. An
// error means nothing was committed: the same batch is retried after a
// backoff. A handler should turn messages it can never handle into error
// records itself; an error it returns for them must be one that
// ConsumerConfig.Permanent recognises, or the partition stalls on it.
type Handler func(ctx context.Context, batch []contract.Message) error

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	Brokers  []string
	GroupID  string
	Topic    string
	MaxBatch int           // most messages per batch (default 500)
	Linger   time.Duration // how long to wait to fill a batch (default 5 ms)
	Logger   *slog.Logger
	Metrics  *metrics.Registry // where the eye_consumer_* metrics go (required)

	// SessionTimeout is how long the group coordinator waits for a
	// heartbeat before it declares this member dead and gives its
	// partitions to the others (default 10 s; brokers accept 6 s … 30 min
	// by default). It bounds how long a killed member's partitions stay
	// unread, and how long a member that rejoins after a broker restart
	// waits for its previous self to expire. HeartbeatInterval (default
	// 1 s) must be well below it. kafka-go heartbeats from its own
	// goroutine, so a slow handler does not miss heartbeats.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration

	// Permanent reports whether a handler error is permanent: caused by
	// the records of the batch, so that retrying them can never succeed
	// (e.g. Postgres refusing a value). nil: no error is. A batch failing
	// permanently is tried MaxAttempts times, then split until the records
	// at fault are alone; those go to DeadLetter and the partition moves
	// on (see Run). Every other error is taken for a dependency being away
	// (Postgres restarting, Kafka unreachable) and retried until it passes.
	Permanent func(error) bool
	// DeadLetter is where records that fail permanently go; required with
	// Permanent.
	DeadLetter DeadLetter
	// MaxAttempts is how many times a batch failing permanently is tried
	// before it is split (default 5). Backoff is the first wait between
	// attempts (default 100 ms); it doubles up to MaxBackoff (default 10 s).
	MaxAttempts int
	Backoff     time.Duration
	MaxBackoff  time.Duration
}

// DeadLetter says where a consumer publishes the records its handler fails
// on permanently: each goes as it was, with the reason, the stage and its
// origin in headers (contract.DeadLetter).
type DeadLetter struct {
	Topic     string    // the dead-letter topic (contract.Topics.DeadLetter)
	Stage     string    // named in the eye-dlq-stage header (contract.StageWriter, …)
	Publisher Publisher // e.g. a *Producer
}

// Publisher publishes messages and returns once Kafka acknowledged them all
// (a *Producer does).
type Publisher interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// Defaults of ConsumerConfig.SessionTimeout and HeartbeatInterval: kafka-go's
// own (30 s, 3 s) made recovery from a broker restart or a killed consumer
// take 30 s.
const (
	DefaultSessionTimeout    = 10 * time.Second
	DefaultHeartbeatInterval = time.Second
)

// joinGroupBackoff is how long kafka-go waits after a failed attempt to join
// the group (its default, 5 s, delays the rejoin after a broker restart).
const joinGroupBackoff = time.Second

// Consumer reads a topic in a consumer group and feeds batches to a Handler,
// committing offsets only after the handler succeeded (at-least-once).
type Consumer struct {
	cfg ConsumerConfig
	r   *kafka.Reader

	// lagClient reads the group's committed offsets and the partitions' end
	// offsets; its transport's connections are closed when Run ends.
	lagClient *kafka.Client
	transport *kafka.Transport

	batchSize     prometheus.Observer
	messages      prometheus.Counter
	handlerErrors prometheus.Counter
	deadLettered  prometheus.Counter
	failing       prometheus.Gauge // failed attempts in a row
	fetchErrors   prometheus.Counter
	lag           *prometheus.GaugeVec // set once measured: no made-up 0 before
}

// Lag polling: every lagInterval, and at most every lagMinGap after a
// committed batch.
const (
	lagInterval = 5 * time.Second
	lagMinGap   = time.Second
	lagTimeout  = 5 * time.Second
)

// NewConsumer validates cfg and returns a consumer; it connects lazily.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("kafkax: no brokers")
	case cfg.GroupID == "" || cfg.Topic == "":
		return nil, errors.New("kafkax: consumer needs a group and a topic")
	case cfg.Logger == nil:
		return nil, errors.New("kafkax: consumer needs a logger")
	case cfg.Metrics == nil:
		return nil, errors.New("kafkax: consumer needs a metrics registry")
	case cfg.Permanent != nil && (cfg.DeadLetter.Topic == "" || cfg.DeadLetter.Stage == "" || cfg.DeadLetter.Publisher == nil):
		return nil, errors.New("kafkax: a consumer that recognises permanent errors needs a dead-letter topic, stage and publisher")
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 5 * time.Millisecond
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = min(DefaultHeartbeatInterval, cfg.SessionTimeout/3)
	}
	if cfg.HeartbeatInterval*2 > cfg.SessionTimeout {
		return nil, fmt.Errorf("kafkax: heartbeat interval %s too long for session timeout %s (at most half, a third or less advised)", cfg.HeartbeatInterval, cfg.SessionTimeout)
	}
	rc := kafka.ReaderConfig{
		Brokers:           cfg.Brokers,
		GroupID:           cfg.GroupID,
		Topic:             cfg.Topic,
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           250 * time.Millisecond,
		StartOffset:       kafka.FirstOffset, // a new group reads from the start: nothing is skipped
		CommitInterval:    0,                 // synchronous commits
		SessionTimeout:    cfg.SessionTimeout,
		HeartbeatInterval: cfg.HeartbeatInterval,
		JoinGroupBackoff:  joinGroupBackoff,
		ErrorLogger:       kafka.LoggerFunc(func(msg string, args ...any) { cfg.Logger.Debug("kafka reader", "msg", fmt.Sprintf(msg, args...)) }),
	}
	if err := rc.Validate(); err != nil { // NewReader would panic
		return nil, fmt.Errorf("kafkax: %w", err)
	}
	r := kafka.NewReader(rc)
	transport := &kafka.Transport{}
	m := cfg.Metrics
	return &Consumer{
		cfg:       cfg,
		r:         r,
		lagClient: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: lagTimeout, Transport: transport},
		transport: transport,
		batchSize: m.Histogram("eye_consumer_batch_size",
			"Messages per batch handed to the handler, by topic.",
			prometheus.ExponentialBuckets(1, 2, 12), // 1 … 2048
			"topic").WithLabelValues(cfg.Topic),
		messages: m.Counter("eye_consumer_messages_total",
			"Messages handled successfully (redeliveries count again), by topic.",
			"topic").WithLabelValues(cfg.Topic),
		handlerErrors: m.Counter("eye_consumer_handler_errors_total",
			"Failed handler attempts (each is retried after a backoff), by topic.",
			"topic").WithLabelValues(cfg.Topic),
		deadLettered: m.Counter("eye_consumer_dead_lettered_total",
			"Records the handler failed on permanently, published to the dead-letter topic and skipped, by the topic they were read from.",
			"topic").WithLabelValues(cfg.Topic),
		failing: m.Gauge("eye_consumer_consecutive_failures",
			"Failed attempts in a row (handler runs and dead-letter publications) since a batch last passed, by topic: 0 while the consumer flows, rising while it is stuck.",
			"topic").WithLabelValues(cfg.Topic),
		fetchErrors: m.Counter("eye_consumer_fetch_errors_total",
			"Errors the Kafka reader reported while fetching (broker unreachable, group coordinator errors), by topic; the consumer rides them out.",
			"topic").WithLabelValues(cfg.Topic),
		lag: m.Gauge("eye_consumer_lag",
			"Messages not yet committed by the consumer group: sum over the topic's partitions of end offset minus committed offset.",
			"topic", "group"),
	}, nil
}

// Ready reports whether a Kafka broker answers, for readiness probes.
func (c *Consumer) Ready(ctx context.Context) error { return Ping(ctx, c.cfg.Brokers) }

// Run consumes until ctx is cancelled, then closes the reader. It returns
// nil on cancellation, and only then: Kafka errors do not end it. The
// reader reports an unreachable broker or group coordinator as fetch
// errors; they are counted (eye_consumer_fetch_errors_total), logged a few
// at a time, and the fetch goes on, since kafka-go's reader reconnects and
// rejoins the group on its own. While it runs, Run keeps eye_consumer_lag
// current.
//
// A batch is committed only after the handler returned nil. If that commit
// fails (the broker went away, or a rebalance gave the partition to another
// member), nothing is lost: the next commit on the partition covers the
// batch, and if there is none, whoever reads the partition next starts from
// the last committed offset and handles the batch again (at-least-once;
// every handler is idempotent). A commit never moves an offset past a
// message that was not handled or dead-lettered.
//
// A failing batch is retried with a backoff (Backoff doubling up to
// MaxBackoff). An error ConsumerConfig.Permanent recognises is retried
// MaxAttempts times; then the batch is split in halves, each handled on its
// own (in order, one attempt per permanent failure), down to the records
// that fail alone. Each of those is published to the dead-letter topic with
// the error as reason (eye_consumer_dead_lettered_total), and the
// partition moves on. That publication is retried until Kafka acknowledges
// it: a stall is better than a loss. Every other error is retried until it
// passes, so an outage of a dependency never dead-letters anything;
// eye_consumer_consecutive_failures shows a consumer stuck on one.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	var wg sync.WaitGroup
	defer c.r.Close() // after wg.Wait: no fetch is in flight any more
	lagCtx, stopLag := context.WithCancel(ctx)
	lagKick := make(chan struct{}, 1)
	wg.Go(func() { c.watchLag(lagCtx, lagKick) })
	defer func() {
		stopLag()
		wg.Wait()
		c.transport.CloseIdleConnections()
	}()
	log := c.cfg.Logger.With("topic", c.cfg.Topic, "group", c.cfg.GroupID)
	fetched := make(chan kafka.Message, c.cfg.MaxBatch)
	wg.Go(func() {
		defer close(fetched)
		retry := Retry{Log: log, What: "kafka fetch"}
		for {
			m, ok := Next(ctx, c.r, &retry, func(error) { c.fetchErrors.Inc() })
			if !ok {
				return
			}
			select {
			case fetched <- m:
			case <-ctx.Done():
				return
			}
		}
	})

	for {
		first, ok := <-fetched
		if !ok {
			return nil // the fetch loop ends only with ctx
		}
		batch := c.fill(ctx, first, fetched)
		c.batchSize.Observe(float64(len(batch)))
		msgs := make([]contract.Message, len(batch))
		for i, m := range batch {
			msgs[i] = fromKafka(m)
		}
		if err := c.handle(ctx, log, h, msgs); err != nil {
			return nil // only ctx cancellation ends handle with an error
		}
		c.messages.Add(float64(len(msgs)))
		// A handled batch is committed even when shutdown has begun, so a
		// clean stop redelivers nothing.
		commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		err := c.r.CommitMessages(commitCtx, batch...)
		cancel()
		if err != nil {
			// See Run: the batch is redelivered unless a later commit on
			// its partitions covers it. Sinks are idempotent.
			log.Warn("commit failed: the batch will be redelivered unless a later commit covers it", "err", err, "messages", len(batch))
		}
		select {
		case lagKick <- struct{}{}:
		default: // an update is already pending
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// commitTimeout bounds a commit, and so how long a shutdown waits for the
// last batch's. Without a live group generation (the broker is away) kafka-go
// holds a commit request until the group is joined again; one that timed out
// may still be sent then, which is harmless: it names only handled messages.
const commitTimeout = 10 * time.Second

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

// handle runs h on msgs until every message is handled or dead-lettered
// (see Run); it fails only when ctx ends, with ctx's error.
func (c *Consumer) handle(ctx context.Context, log *slog.Logger, h Handler, msgs []contract.Message) error {
	return c.handleTrying(ctx, log, h, msgs, c.cfg.MaxAttempts)
}

// handleTrying is handle, trying msgs at most tries times while h fails
// permanently before it splits them.
func (c *Consumer) handleTrying(ctx context.Context, log *slog.Logger, h Handler, msgs []contract.Message, tries int) error {
	err := c.try(ctx, log, h, msgs, tries)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case len(msgs) == 1:
		return c.deadLetter(ctx, log, msgs[0], err)
	}
	// The batch was tried enough: each half gets one attempt per
	// permanent failure, down to the records at fault.
	log.Warn("batch fails permanently: splitting it to find the records at fault", "err", err, "messages", len(msgs))
	half := len(msgs) / 2
	if err := c.handleTrying(ctx, log, h, msgs[:half], 1); err != nil {
		return err
	}
	return c.handleTrying(ctx, log, h, msgs[half:], 1)
}

// try runs h on msgs until it succeeds, backing off between attempts:
// without end while h fails transiently, at most tries times in all while
// it fails permanently. It returns nil, ctx's error once ctx ended, or the
// last permanent error.
func (c *Consumer) try(ctx context.Context, log *slog.Logger, h Handler, msgs []contract.Message, tries int) error {
	retry := Retry{Log: log, What: fmt.Sprintf("handler (batch of %d messages)", len(msgs)), Min: c.cfg.Backoff, Max: c.cfg.MaxBackoff}
	permanent := 0
	for {
		err := h(ctx, msgs)
		if err == nil {
			retry.Succeeded()
			c.failing.Set(0)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.handlerErrors.Inc()
		c.failing.Inc()
		if c.cfg.Permanent != nil && c.cfg.Permanent(err) {
			if permanent++; permanent >= tries {
				return err
			}
		}
		retry.Failed(err)
		if !retry.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// deadLetter publishes m to the dead-letter topic with why the handler fails
// on it, retrying until Kafka acknowledges it or ctx ends (then m is not
// committed and is consumed again).
func (c *Consumer) deadLetter(ctx context.Context, log *slog.Logger, m contract.Message, cause error) error {
	dl := c.cfg.DeadLetter
	msg := contract.DeadLetter(dl.Topic, m, dl.Stage, fmt.Errorf("the handler fails on it permanently: %w", cause))
	source := msg.Headers[contract.HeaderDLQSource]
	retry := &Retry{Log: log, What: "dead-letter publication of " + source, Min: c.cfg.Backoff, Max: c.cfg.MaxBackoff}
	err := Until(ctx, retry, func(ctx context.Context) error {
		err := dl.Publisher.Publish(ctx, msg)
		if err != nil && ctx.Err() == nil {
			c.failing.Inc()
		}
		return err
	})
	if err != nil {
		return err
	}
	c.deadLettered.Inc()
	c.failing.Set(0)
	log.Error("record dead-lettered: the handler fails on it permanently", "source", source, "dead_letter_topic", dl.Topic, "err", cause)
	return nil
}

// watchLag updates the lag gauge now, every lagInterval and, at most every
// lagMinGap, after each committed batch (a send on kick), until ctx ends.
func (c *Consumer) watchLag(ctx context.Context, kick <-chan struct{}) {
	log := c.cfg.Logger.With("topic", c.cfg.Topic, "group", c.cfg.GroupID)
	tick := time.NewTicker(lagInterval)
	defer tick.Stop()
	failing := false
	for {
		lagCtx, cancel := context.WithTimeout(ctx, lagTimeout)
		lag, err := c.groupLag(lagCtx)
		cancel()
		if err != nil {
			// Connections to a broker that restarted are dead; kafka-go's
			// transport would try them again.
			c.transport.CloseIdleConnections()
		}
		switch {
		case err == nil:
			c.lag.WithLabelValues(c.cfg.Topic, c.cfg.GroupID).Set(float64(lag))
			if failing {
				log.Info("consumer lag available again")
			}
			failing = false
		case ctx.Err() != nil:
			return
		case !failing: // once per outage: Kafka being down is reported elsewhere
			log.Warn("consumer lag unavailable", "err", err)
			failing = true
		default:
			log.Debug("consumer lag unavailable", "err", err)
		}
		last := time.Now()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-kick:
			if wait := lagMinGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
	}
}

// groupLag is how many messages of the topic the group has not committed
// yet: the sum over partitions of the end offset minus the committed one
// (the log start offset where the group committed nothing, since a new
// group starts there). Unlike kafka-go's reader statistics, it covers every
// partition and keeps growing while the handler is stuck.
func (c *Consumer) groupLag(ctx context.Context) (int64, error) {
	topic := c.cfg.Topic
	md, err := c.lagClient.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err == nil {
		switch {
		case len(md.Topics) != 1:
			err = errors.New("not in the metadata")
		case md.Topics[0].Error != nil:
			err = md.Topics[0].Error
		}
	}
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	ids := make([]int, len(md.Topics[0].Partitions))
	for i, p := range md.Topics[0].Partitions {
		ids[i] = p.ID
	}
	committed, err := c.lagClient.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: c.cfg.GroupID, Topics: map[string][]int{topic: ids}})
	if err == nil && committed.Error != nil {
		err = committed.Error
	}
	if err != nil {
		return 0, fmt.Errorf("committed offsets of %s: %w", c.cfg.GroupID, err)
	}
	parts := committed.Topics[topic]
	if len(parts) == 0 {
		return 0, fmt.Errorf("committed offsets of %s: no partitions for %s", c.cfg.GroupID, topic)
	}
	from := make(map[int]int64, len(parts))
	var ends, starts []kafka.OffsetRequest
	for _, p := range parts {
		if p.Error != nil {
			return 0, fmt.Errorf("committed offset of %s/%d: %w", topic, p.Partition, p.Error)
		}
		from[p.Partition] = p.CommittedOffset
		ends = append(ends, kafka.LastOffsetOf(p.Partition))
		if p.CommittedOffset < 0 {
			starts = append(starts, kafka.FirstOffsetOf(p.Partition))
		}
	}
	// One request each: brokers refuse a partition listed twice in one.
	end, err := c.listOffsets(ctx, ends, func(p kafka.PartitionOffsets) int64 { return p.LastOffset })
	if err != nil {
		return 0, err
	}
	start, err := c.listOffsets(ctx, starts, func(p kafka.PartitionOffsets) int64 { return p.FirstOffset })
	if err != nil {
		return 0, err
	}
	var lag int64
	for p, off := range from {
		if off < 0 {
			off = start[p]
		}
		e, ok := end[p]
		if !ok {
			return 0, fmt.Errorf("end offset of %s/%d missing", topic, p)
		}
		lag += max(0, e-off)
	}
	return lag, nil
}

// listOffsets asks for the offsets in reqs and returns the one pick selects,
// by partition.
func (c *Consumer) listOffsets(ctx context.Context, reqs []kafka.OffsetRequest, pick func(kafka.PartitionOffsets) int64) (map[int]int64, error) {
	out := make(map[int]int64, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	res, err := c.lagClient.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{c.cfg.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", c.cfg.Topic, err)
	}
	for _, p := range res.Topics[c.cfg.Topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", c.cfg.Topic, p.Partition, p.Error)
		}
		out[p.Partition] = pick(p)
	}
	return out, nil
}

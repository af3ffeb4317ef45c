package schemas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// Producer writes messages and returns once Kafka acknowledged them all.
type Producer interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Store    Store
	Producer Producer
	Topic    string // the schemas topic (contract.Topics.Schemas)
	// Ensure creates the topic (kafkax.EnsureCompactedTopic); Run calls it
	// until it succeeds.
	Ensure func(context.Context) error
	// Timeout bounds one publication (EYE_PUBLISH_TIMEOUT).
	Timeout time.Duration
	// Interval is how often Run publishes what is still unpublished
	// (default 2 s).
	Interval time.Duration
	Logger   *slog.Logger
}

// Publisher puts stored schema versions on the schemas topic. Postgres is
// the outbox: a version is marked published once Kafka acknowledged it, and
// Run publishes the others until it is, so a version added while Kafka was
// unreachable still reaches the validators.
type Publisher struct {
	cfg PublisherConfig
}

// batchSize bounds the versions Run publishes at once.
const batchSize = 500

// NewPublisher checks cfg and returns a Publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	switch {
	case cfg.Store == nil || cfg.Producer == nil || cfg.Ensure == nil || cfg.Logger == nil:
		return nil, errors.New("schemas: publisher needs a store, a producer, an ensure function and a logger")
	case cfg.Topic == "" || cfg.Timeout <= 0:
		return nil, errors.New("schemas: publisher needs a topic and a positive timeout")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	return &Publisher{cfg: cfg}, nil
}

// Publish puts recs on the topic and marks them published, within the
// configured timeout.
func (p *Publisher) Publish(ctx context.Context, recs ...Record) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	msgs := make([]contract.Message, len(recs))
	for i, r := range recs {
		m, err := contract.Encode(p.cfg.Topic, contract.SchemaKey(r.Category, r.Name, r.Version), &contract.Schema{
			Category: r.Category, Name: r.Name, Version: r.Version, Schema: r.Schema, CreatedAt: r.CreatedAt.Time})
		if err != nil {
			return err
		}
		msgs[i] = m
	}
	if err := p.cfg.Producer.Publish(ctx, msgs...); err != nil {
		return fmt.Errorf("publish schemas: %w", err)
	}
	return p.cfg.Store.MarkPublished(ctx, recs)
}

// Run ensures the topic, publishes every stored version once (the topic may
// have been lost or recreated; on a compacted topic a repeat costs
// nothing), then every Interval the versions still unpublished, until ctx
// ends.
func (p *Publisher) Run(ctx context.Context) {
	log := p.cfg.Logger.With("topic", p.cfg.Topic)
	for {
		err := p.cfg.Ensure(ctx)
		if err == nil {
			break
		}
		log.Warn("schemas topic not ensured yet: new schemas reach the validators once it is", "err", err)
		if !sleep(ctx, 5*time.Second) {
			return
		}
	}
	all := true
	failing := false
	for {
		if err := p.publishPending(ctx, all); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				log.Warn("schemas not published yet, retrying", "err", err)
			}
			failing = true
		} else {
			all, failing = false, false
		}
		if !sleep(ctx, p.cfg.Interval) {
			return
		}
	}
}

// publishPending publishes the unpublished versions (every version with
// all), a batch at a time.
func (p *Publisher) publishPending(ctx context.Context, all bool) error {
	if all {
		page := paging.Request{Limit: batchSize}
		for {
			recs, links, err := p.cfg.Store.List(ctx, Filter{}, page)
			if err != nil {
				return err
			}
			if err := p.publish(ctx, recs); err != nil {
				return err
			}
			if links.Next == nil {
				return nil
			}
			page.Cursor = *links.Next
		}
	}
	for {
		recs, err := p.cfg.Store.Unpublished(ctx, batchSize)
		if err != nil {
			return err
		}
		if err := p.publish(ctx, recs); err != nil {
			return err
		}
		if len(recs) < batchSize {
			return nil
		}
	}
}

func (p *Publisher) publish(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	return p.Publish(ctx, recs...)
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Command validator consumes the raw topic and routes every event to the
// valid-events topic or, with typed reasons, to the errors topic. It checks
// each event's data against its type's JSON Schema, following the schemas
// topic so new versions apply without a restart (docs/schemas.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/the-eye/eye/pkg/config"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/schema"
	"github.com/the-eye/eye/services/validator/internal/httpapi"
	"github.com/the-eye/eye/services/validator/internal/kafkaapi"
	"github.com/the-eye/eye/services/validator/internal/postgres"
	"github.com/the-eye/eye/services/validator/internal/validate"
)

type cfg struct {
	config.Common
	config.Consumer
	Addr            string        `env:"EYE_VALIDATOR_ADDR, default=:8082"`
	GroupID         string        `env:"EYE_VALIDATOR_GROUP, default=validator"`
	FutureTolerance time.Duration `env:"EYE_FUTURE_TOLERANCE, default=1m"`
	MaxBatch        int           `env:"EYE_VALIDATOR_BATCH, default=500"`
	// SettingsTTL is how long an application's strict-types setting is
	// cached: a change applies within it.
	SettingsTTL time.Duration `env:"EYE_KEY_CACHE_TTL, default=5s"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "validator:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var c cfg
	if err := config.Load(&c); err != nil {
		return err
	}
	c.TuneRuntime()
	log := c.Logger("validator")
	log.Info("starting", "config", config.LogValue(&c))
	reg := metrics.New("validator")

	brokers := kafkax.Brokers(c.Brokers)
	topics := contract.NewTopics(c.TopicPrefix)
	startCtx, cancel := context.WithTimeout(ctx, c.StartupWait)
	defer cancel()
	if err := kafkax.EnsureTopics(startCtx, brokers, c.Partitions, c.Replication, topics.All()...); err != nil {
		return err
	}
	if err := kafkax.EnsureCompactedTopic(startCtx, brokers, c.Replication, topics.Schemas); err != nil {
		return err
	}
	// Postgres only answers the applications' strict-types setting, asked
	// for events of types without a schema (cached per application).
	db, err := pg.OpenMigrated(startCtx, c.PostgresDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	settings, err := postgres.New(db)
	if err != nil {
		return err
	}
	schemas := schema.NewRegistry()
	follower, err := schema.NewFollower(schema.FollowerConfig{Brokers: brokers, Topic: topics.Schemas, Registry: schemas, Logger: log})
	if err != nil {
		return err
	}
	producer, err := kafkax.NewProducer(kafkax.ProducerConfig{Brokers: brokers, Metrics: reg})
	if err != nil {
		return err
	}
	defer producer.Close()
	rules := event.DefaultRules()
	rules.FutureTolerance = c.FutureTolerance
	v := validate.New(rules, validate.WithSchemas(schemas, validate.CachedStrictTypes(settings.StrictTypes, c.SettingsTTL)))
	handler, err := kafkaapi.New(v, topics, producer)
	if err != nil {
		return err
	}
	consumer, err := kafkax.NewConsumer(kafkax.ConsumerConfig{
		Brokers: brokers, GroupID: c.TopicPrefix + c.GroupID, Topic: topics.Raw, MaxBatch: c.MaxBatch, Logger: log, Metrics: reg,
		SessionTimeout: c.SessionTimeout, HeartbeatInterval: c.HeartbeatInterval,
		// The handler fails only on its dependencies (Kafka, the settings in
		// Postgres), which are waited out; a refused row would be dead-lettered.
		Permanent:   pg.IsRefused,
		DeadLetter:  kafkax.DeadLetter{Topic: topics.DeadLetter, Stage: contract.StageValidator, Publisher: producer},
		MaxAttempts: c.MaxAttempts, Backoff: c.Backoff, MaxBackoff: c.MaxBackoff,
	})
	if err != nil {
		return err
	}

	api, err := httpapi.New(schemas, httpx.Readyz(log, map[string]func(context.Context) error{"kafka": consumer.Ready, "schemas": follower.Ready}))
	if err != nil {
		return err
	}
	r := httpx.NewEngine(log, reg)
	api.Register(r)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return follower.Run(ctx) })
	g.Go(func() error {
		// Validating before the schemas on the topic are loaded would let
		// events through unchecked.
		select {
		case <-follower.Synced():
		case <-ctx.Done():
		}
		return consumer.Run(ctx, handler.Handle)
	})
	g.Go(func() error { return httpx.Serve(ctx, c.Addr, r, log) })
	return g.Wait()
}

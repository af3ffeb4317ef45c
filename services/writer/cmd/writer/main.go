// Command writer persists validated events, sessions and error records from
// Kafka into Postgres, committing offsets only after the database commit.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/the-eye/eye/pkg/config"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/services/writer/internal/kafkaapi"
	"github.com/the-eye/eye/services/writer/internal/persist"
	"github.com/the-eye/eye/services/writer/internal/postgres"
)

type cfg struct {
	config.Common
	config.Consumer
	Addr     string `env:"EYE_WRITER_ADDR, default=:8083"`
	GroupID  string `env:"EYE_WRITER_GROUP, default=writer"`
	MaxBatch int    `env:"EYE_WRITER_BATCH, default=5000"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var c cfg
	if err := config.Load(&c); err != nil {
		return err
	}
	c.TuneRuntime()
	log := c.Logger("writer")
	log.Info("starting", "config", config.LogValue(&c))
	reg := metrics.New("writer")

	startCtx, cancel := context.WithTimeout(ctx, c.StartupWait)
	defer cancel()
	db, err := pg.OpenMigrated(startCtx, c.PostgresDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	brokers := kafkax.Brokers(c.Brokers)
	topics := contract.NewTopics(c.TopicPrefix)
	if err := kafkax.EnsureTopics(startCtx, brokers, c.Partitions, c.Replication, topics.All()...); err != nil {
		return err
	}
	st, err := postgres.New(db)
	if err != nil {
		return err
	}
	w, err := persist.New(st)
	if err != nil {
		return err
	}
	producer, err := kafkax.NewProducer(kafkax.ProducerConfig{Brokers: brokers, Metrics: reg}) // error records and dead letters
	if err != nil {
		return err
	}
	defer producer.Close()
	handlers, err := kafkaapi.New(w, producer, topics)
	if err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	// One group per topic: a member joining for one topic never makes the
	// others rebalance.
	sinks := map[string]kafkax.Handler{"events": handlers.Events, "errors": handlers.Errors}
	topicOf := map[string]string{"events": topics.Events, "errors": topics.Errors}
	for name, handle := range sinks {
		consumer, err := kafkax.NewConsumer(kafkax.ConsumerConfig{
			Brokers: brokers, GroupID: c.TopicPrefix + c.GroupID + "." + name, Topic: topicOf[name], MaxBatch: c.MaxBatch, Logger: log, Metrics: reg,
			SessionTimeout: c.SessionTimeout, HeartbeatInterval: c.HeartbeatInterval,
			// Rows Postgres refuses are dead-lettered after the retries;
			// Postgres being away is waited out (docs/architecture.md).
			Permanent:   pg.IsRefused,
			DeadLetter:  kafkax.DeadLetter{Topic: topics.DeadLetter, Stage: contract.StageWriter, Publisher: producer},
			MaxAttempts: c.MaxAttempts, Backoff: c.Backoff, MaxBackoff: c.MaxBackoff,
		})
		if err != nil {
			return err
		}
		g.Go(func() error { return consumer.Run(ctx, handle) })
	}
	r := httpx.NewEngine(log, reg)
	r.GET("/readyz", httpx.Readyz(log, map[string]func(context.Context) error{
		"kafka":    func(ctx context.Context) error { return kafkax.Ping(ctx, brokers) },
		"postgres": db.PingContext,
	}))
	g.Go(func() error { return httpx.Serve(ctx, c.Addr, r, log) })
	return g.Wait()
}

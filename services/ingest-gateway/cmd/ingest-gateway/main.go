// Command ingest-gateway accepts events over HTTP and writes them to the raw
// Kafka topic, keyed by session id, answering 202 only after Kafka
// acknowledged them.
//
//	@title						The Eye — ingest gateway
//	@version					1
//	@description				Applications post user-behaviour events here. Every request carries `Authorization: Bearer <write key>`.
//	@BasePath					/
//	@securityDefinitions.apikey	BearerKey
//	@in							header
//	@name						Authorization
//	@description				"Bearer " followed by a write key.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/config"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/services/ingest-gateway/internal/docs"
	"github.com/the-eye/eye/services/ingest-gateway/internal/httpapi"
	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
	"github.com/the-eye/eye/services/ingest-gateway/internal/postgres"
)

type cfg struct {
	config.Common
	config.Keys
	Addr            string        `env:"EYE_GATEWAY_ADDR, default=:8080"`
	MaxBodyBytes    int64         `env:"EYE_MAX_BODY_BYTES, default=5242880"`
	MaxEventBytes   int           `env:"EYE_MAX_EVENT_BYTES, default=32768"`
	MaxBatchEvents  int           `env:"EYE_MAX_BATCH_EVENTS, default=5000"`
	MaxStreamEvents int           `env:"EYE_MAX_STREAM_EVENTS, default=1000000"`
	MaxDepth        int           `env:"EYE_MAX_JSON_DEPTH, default=32"`
	MaxInflight     int           `env:"EYE_MAX_INFLIGHT, default=512"`
	PublishTimeout  time.Duration `env:"EYE_PUBLISH_TIMEOUT, default=5s"`
	StreamTimeout   time.Duration `env:"EYE_STREAM_TIMEOUT, default=10m"`
	RateLimit       float64       `env:"EYE_RATE_LIMIT, default=50000"`
	RateBurst       int           `env:"EYE_RATE_BURST, default=100000"`
	AuthFailEvery   time.Duration `env:"EYE_AUTH_FAILURE_EVERY, default=1s"`
	AuthFailBurst   int           `env:"EYE_AUTH_FAILURE_BURST, default=20"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ingest-gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var c cfg
	if err := config.Load(&c); err != nil {
		return err
	}
	c.TuneRuntime()
	log := c.Logger("ingest-gateway")
	log.Info("starting", "config", config.LogValue(&c))

	startCtx, cancel := context.WithTimeout(ctx, c.StartupWait)
	defer cancel()
	db, err := pg.OpenMigrated(startCtx, c.PostgresDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	authn, _, err := auth.Setup(startCtx, db, c.Keys.CacheTTL,
		auth.DevKeys{Write: c.DevWriteKey, Read: c.DevReadKey, Admin: c.DevAdminKey})
	if err != nil {
		return err
	}
	brokers := kafkax.Brokers(c.Brokers)
	topics := contract.NewTopics(c.TopicPrefix)
	if err := kafkax.EnsureTopics(startCtx, brokers, c.Partitions, c.Replication, topics.All()...); err != nil {
		return err
	}

	reg := metrics.New("ingest-gateway")
	producer, err := kafkax.NewProducer(kafkax.ProducerConfig{Brokers: brokers, Metrics: reg})
	if err != nil {
		return err
	}
	defer producer.Close()
	sessions, err := postgres.New(db)
	if err != nil {
		return err
	}
	svc, err := ingest.NewService(producer, sessions, topics, ingest.Limits{
		MaxEvents: c.MaxBatchEvents, MaxStreamEvents: c.MaxStreamEvents, MaxEventBytes: c.MaxEventBytes, MaxDepth: c.MaxDepth,
	})
	if err != nil {
		return err
	}
	api, err := httpapi.New(svc, authn, httpapi.Config{
		MaxBodyBytes: c.MaxBodyBytes, PublishTimeout: c.PublishTimeout, StreamTimeout: c.StreamTimeout, MaxInflight: c.MaxInflight,
		RateLimit: c.RateLimit, RateBurst: c.RateBurst, AuthFailures: httpx.NewFailureLimiter(c.AuthFailEvery, c.AuthFailBurst), Metrics: reg,
	},
		httpx.Readyz(log, map[string]func(context.Context) error{
			"kafka":    func(ctx context.Context) error { return kafkax.Ping(ctx, brokers) },
			"postgres": db.PingContext,
		}))
	if err != nil {
		return err
	}
	r := httpx.NewEngine(log, reg)
	api.Register(r)
	httpx.Docs(r, docs.SwaggerInfo.InstanceName(), docs.OpenAPI3)
	return httpx.Serve(ctx, c.Addr, r, log)
}

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
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/services/ingest-gateway/internal/docs"
	"github.com/the-eye/eye/services/ingest-gateway/internal/httpapi"
	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
)

type cfg struct {
	config.Common
	Addr           string        `env:"EYE_GATEWAY_ADDR" default:":8080"`
	MaxBodyBytes   int64         `env:"EYE_MAX_BODY_BYTES" default:"5242880"`
	MaxBatchEvents int           `env:"EYE_MAX_BATCH_EVENTS" default:"10000"`
	PublishTimeout time.Duration `env:"EYE_PUBLISH_TIMEOUT" default:"5s"`
	KeyCacheTTL    time.Duration `env:"EYE_KEY_CACHE_TTL" default:"5s"`
	DevWriteKey    string        `env:"EYE_DEV_WRITE_KEY" secret:"true"`
	DevReadKey     string        `env:"EYE_DEV_READ_KEY" secret:"true"`
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
	log := c.Logger("ingest-gateway")
	log.Info("starting", "config", config.LogValue(&c))

	startCtx, cancel := context.WithTimeout(ctx, c.StartupWait)
	defer cancel()
	db, err := pg.Open(startCtx, c.PostgresDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := pg.Migrate(startCtx, db); err != nil {
		return err
	}
	keys, err := auth.NewPGStore(db)
	if err != nil {
		return err
	}
	if err := keys.RegisterDevKeys(startCtx, c.DevWriteKey, c.DevReadKey); err != nil {
		return err
	}
	brokers := kafkax.Brokers(c.Brokers)
	topics := contract.NewTopics(c.TopicPrefix)
	if err := kafkax.EnsureTopics(startCtx, brokers, c.Partitions, c.Replication, topics.All()...); err != nil {
		return err
	}

	producer, err := kafkax.NewProducer(brokers)
	if err != nil {
		return err
	}
	defer producer.Close()
	svc, err := ingest.NewService(producer, topics, ingest.Limits{MaxEvents: c.MaxBatchEvents})
	if err != nil {
		return err
	}
	authn, err := auth.NewAuthenticator(keys, c.KeyCacheTTL)
	if err != nil {
		return err
	}
	api, err := httpapi.New(svc, authn, httpapi.Config{MaxBodyBytes: c.MaxBodyBytes, PublishTimeout: c.PublishTimeout},
		func(ctx context.Context) error { return kafkax.Ping(ctx, brokers) })
	if err != nil {
		return err
	}
	r := httpx.NewEngine(log)
	api.Register(r)
	httpx.Docs(r, docs.SwaggerInfo.InstanceName())
	return httpx.Serve(ctx, c.Addr, r, log)
}

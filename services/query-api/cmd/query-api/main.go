// Command query-api serves stored events, sessions and error records to
// analysts over HTTP.
//
//	@title						The Eye — query API
//	@version					1
//	@description				Query events, sessions and error records. Every request carries `Authorization: Bearer <read key>`; changing events needs the admin scope.
//	@BasePath					/
//	@securityDefinitions.apikey	BearerKey
//	@in							header
//	@name						Authorization
//	@description				"Bearer " followed by a read or admin key.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/config"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/services/query-api/internal/admin"
	"github.com/the-eye/eye/services/query-api/internal/docs"
	"github.com/the-eye/eye/services/query-api/internal/httpapi"
	"github.com/the-eye/eye/services/query-api/internal/postgres"
	"github.com/the-eye/eye/services/query-api/internal/query"
	"github.com/the-eye/eye/services/query-api/internal/schemas"
)

type cfg struct {
	config.Common
	config.Keys
	Addr            string        `env:"EYE_QUERY_ADDR, default=:8081"`
	QueryTimeout    time.Duration `env:"EYE_QUERY_TIMEOUT, default=5s"`
	FutureTolerance time.Duration `env:"EYE_FUTURE_TOLERANCE, default=1m"`
	RotationOverlap time.Duration `env:"EYE_KEY_ROTATION_OVERLAP, default=24h"`
	PublishTimeout  time.Duration `env:"EYE_PUBLISH_TIMEOUT, default=5s"`
	// SchemaDir holds JSON Schemas to store at start-up, laid out as
	// <category>/<name>/<version>.json (docs/schemas.md); empty: none.
	SchemaDir string `env:"EYE_SCHEMA_DIR"`
	// SchemaCheck is how many of a type's most recent stored events a new
	// schema version is checked against before it is stored.
	SchemaCheck int `env:"EYE_SCHEMA_CHECK_EVENTS, default=1000"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "query-api:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var c cfg
	if err := config.Load(&c); err != nil {
		return err
	}
	c.TuneRuntime()
	log := c.Logger("query-api")
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
	rules := event.DefaultRules()
	rules.FutureTolerance = c.FutureTolerance
	storage, err := postgres.NewStore(db, c.QueryTimeout)
	if err != nil {
		return err
	}
	store, err := query.NewService(storage, rules)
	if err != nil {
		return err
	}
	adminStorage, err := postgres.NewAdmin(db, c.QueryTimeout)
	if err != nil {
		return err
	}
	admins, err := admin.NewService(adminStorage, c.RotationOverlap)
	if err != nil {
		return err
	}

	// Kafka only carries erasure tombstones from here: reads must not wait
	// for it, so the topics are ensured in the background and an erasure
	// answers 503 until they exist.
	reg := metrics.New("query-api")
	brokers := kafkax.Brokers(c.Brokers)
	topics := contract.NewTopics(c.TopicPrefix)
	producer, err := kafkax.NewProducer(kafkax.ProducerConfig{Brokers: brokers, Metrics: reg})
	if err != nil {
		return err
	}
	defer producer.Close()
	// Background work ends with run, whatever ends it, and is waited for
	// before the producer closes. Each attempt to ensure the topics waits
	// for the broker at most EYE_STARTUP_TIMEOUT; the retries go on until
	// they exist or run ends.
	var background sync.WaitGroup
	defer background.Wait()
	ctx, stopBackground := context.WithCancel(ctx)
	defer stopBackground() // before the Wait
	background.Go(func() {
		retry := &kafkax.Retry{Log: log, What: "kafka topics (erasures and replays answer 503 until they exist)", Min: time.Second, Max: 5 * time.Second}
		_ = kafkax.Until(ctx, retry, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, c.StartupWait)
			defer cancel()
			return kafkax.EnsureTopics(ctx, brokers, c.Partitions, c.Replication, topics.All()...)
		})
	})
	eraser, err := query.NewEraser(storage, producer, topics.Erasures, c.PublishTimeout)
	if err != nil {
		return err
	}
	// Replays of error records go to the raw topic through the same
	// producer, as the gateway writes them (docs/errors.md).
	replayer, err := query.NewReplayer(storage, rules, producer, topics.Raw, c.PublishTimeout)
	if err != nil {
		return err
	}

	// Schemas: Postgres is the source of truth; the publisher puts every
	// version on the compacted schemas topic the validators follow.
	schemaStore, err := postgres.NewSchemas(db, c.QueryTimeout)
	if err != nil {
		return err
	}
	schemaService, err := schemas.NewService(schemaStore)
	if err != nil {
		return err
	}
	if c.SchemaDir != "" {
		added, err := schemas.LoadDir(startCtx, schemaStore, c.SchemaDir)
		if err != nil {
			return err
		}
		log.Info("schemas loaded", "dir", c.SchemaDir, "added", added)
	}
	schemaPub, err := schemas.NewPublisher(schemas.PublisherConfig{
		Store: schemaStore, Producer: producer, Topic: topics.Schemas, Timeout: c.PublishTimeout, Logger: log,
		Ensure: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, c.StartupWait)
			defer cancel()
			return kafkax.EnsureCompactedTopic(ctx, brokers, c.Replication, topics.Schemas)
		},
	})
	if err != nil {
		return err
	}
	background.Go(func() { schemaPub.Run(ctx) })

	// Ready when Postgres answers: reads need nothing else, and the features
	// that publish to Kafka answer 503 on their own while it is away.
	ready := httpx.Readyz(log, map[string]func(context.Context) error{"postgres": db.PingContext})
	api, err := httpapi.New(store, admins, authn, ready, httpapi.WithEraser(eraser), httpapi.WithSchemas(schemaService, schemaPub, c.SchemaCheck),
		httpapi.WithReplayer(replayer))
	if err != nil {
		return err
	}
	r := httpx.NewEngine(log, reg)
	api.Register(r)
	httpx.Docs(r, docs.SwaggerInfo.InstanceName(), docs.OpenAPI3)
	return httpx.Serve(ctx, c.Addr, r, log)
}

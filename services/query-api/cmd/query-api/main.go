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
	"syscall"
	"time"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/config"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/services/query-api/internal/admin"
	"github.com/the-eye/eye/services/query-api/internal/docs"
	"github.com/the-eye/eye/services/query-api/internal/httpapi"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

type cfg struct {
	config.Common
	Addr            string        `env:"EYE_QUERY_ADDR" default:":8081"`
	QueryTimeout    time.Duration `env:"EYE_QUERY_TIMEOUT" default:"5s"`
	FutureTolerance time.Duration `env:"EYE_FUTURE_TOLERANCE" default:"1m"`
	KeyCacheTTL     time.Duration `env:"EYE_KEY_CACHE_TTL" default:"5s"`
	RotationOverlap time.Duration `env:"EYE_KEY_ROTATION_OVERLAP" default:"24h"`
	DevWriteKey     string        `env:"EYE_DEV_WRITE_KEY" secret:"true"`
	DevReadKey      string        `env:"EYE_DEV_READ_KEY" secret:"true"`
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
	log := c.Logger("query-api")
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
	authn, err := auth.NewAuthenticator(keys, c.KeyCacheTTL)
	if err != nil {
		return err
	}
	rules := event.DefaultRules()
	rules.FutureTolerance = c.FutureTolerance
	store, err := query.NewStore(db, rules, c.QueryTimeout)
	if err != nil {
		return err
	}
	admins, err := admin.NewStore(db, admin.Config{Timeout: c.QueryTimeout, RotationOverlap: c.RotationOverlap})
	if err != nil {
		return err
	}
	api, err := httpapi.New(store, admins, authn, db.PingContext)
	if err != nil {
		return err
	}
	r := httpx.NewEngine(log, metrics.New("query-api"))
	api.Register(r)
	httpx.Docs(r, docs.SwaggerInfo.InstanceName())
	return httpx.Serve(ctx, c.Addr, r, log)
}

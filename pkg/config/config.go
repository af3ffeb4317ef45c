// Package config loads a service's configuration from the environment into
// one struct, read once at start-up, with sethvargo/go-envconfig: fields
// declare their variable and default in an `env` tag
// (`env:"EYE_X, default=5s"`); `secret:"true"` masks a value when the
// configuration is logged. A variable set to the empty string counts as
// unset, so its default applies.
package config

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Load fills the struct pointed to by dst from the environment.
func Load(dst any) error { return LoadFrom(os.LookupEnv, dst) }

// LoadFrom is Load with a custom lookup, for tests.
func LoadFrom(lookup func(string) (string, bool), dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: want a pointer to a struct, got %T", dst)
	}
	if err := refuseSeparateDefaults(v.Elem().Type()); err != nil {
		return err
	}
	set := envconfig.LookuperFunc(func(key string) (string, bool) {
		val, ok := lookup(key)
		return val, ok && val != ""
	})
	if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: dst, Lookuper: set}); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// refuseSeparateDefaults catches a field written for the loader this package
// had before go-envconfig (`env:"X" default:"1"`): go-envconfig would ignore
// its default without a word.
func refuseSeparateDefaults(t reflect.Type) error {
	for i := range t.NumField() {
		f := t.Field(i)
		if _, ok := f.Tag.Lookup("default"); ok {
			return fmt.Errorf("config: field %s: write its default inside the env tag (env:\"NAME, default=VALUE\")", f.Name)
		}
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			if err := refuseSeparateDefaults(f.Type); err != nil {
				return err
			}
		}
	}
	return nil
}

// envName is the variable an env tag names.
func envName(tag string) string {
	name, _, _ := strings.Cut(tag, ",")
	return strings.TrimSpace(name)
}

// LogValue renders cfg for logging with secret fields masked.
func LogValue(cfg any) slog.Value {
	var attrs []slog.Attr
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			name := envName(f.Tag.Get("env"))
			if name == "" {
				if f.Type.Kind() == reflect.Struct {
					walk(fv)
				}
				continue
			}
			val := fmt.Sprint(fv.Interface())
			if f.Tag.Get("secret") == "true" && val != "" {
				val = "***"
			}
			attrs = append(attrs, slog.String(name, val))
		}
	}
	v := reflect.ValueOf(cfg)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	walk(v)
	return slog.GroupValue(attrs...)
}

// Common is the configuration every service shares.
type Common struct {
	LogLevel    string        `env:"EYE_LOG_LEVEL, default=info"`
	Brokers     string        `env:"EYE_KAFKA_BROKERS, default=127.0.0.1:9092"`
	TopicPrefix string        `env:"EYE_TOPIC_PREFIX, default=eye."`
	Partitions  int           `env:"EYE_TOPIC_PARTITIONS, default=6"`
	Replication int           `env:"EYE_TOPIC_REPLICATION, default=1"`
	PostgresDSN string        `env:"EYE_POSTGRES_DSN, default=postgres://eye@127.0.0.1:5432/eye?sslmode=disable" secret:"true"`
	StartupWait time.Duration `env:"EYE_STARTUP_TIMEOUT, default=60s"`
	// GCPercent is the garbage collector's target (GOGC) the services run
	// with unless the GOGC environment variable is set. They keep little
	// live heap (tens of MB) and, at Go's default of 100, spent 10–15% of
	// their CPU collecting it; 400 trades a few tens of MB for that CPU.
	GCPercent int `env:"EYE_GOGC, default=400"`
}

// TuneRuntime applies the runtime settings of c: GCPercent, unless GOGC is
// set in the environment (the Go runtime has then applied it already).
func (c Common) TuneRuntime() {
	if _, set := os.LookupEnv("GOGC"); !set && c.GCPercent > 0 {
		debug.SetGCPercent(c.GCPercent)
	}
}

// Consumer configures Kafka consumer-group membership, for the services
// that consume (validator, writer); see kafkax.ConsumerConfig.
type Consumer struct {
	// SessionTimeout is how long the group coordinator waits for a member's
	// heartbeat before it hands the member's partitions to the others: how
	// long a killed consumer's partitions stay unread, and how long one
	// that rejoins after a broker restart waits for its former self to
	// expire. Shorter is faster recovery; a process that cannot heartbeat
	// for longer (frozen, cut off) is evicted and its batch redelivered.
	// Brokers accept 6s … 30m by default.
	SessionTimeout time.Duration `env:"EYE_KAFKA_SESSION_TIMEOUT, default=10s"`
	// HeartbeatInterval must be well below SessionTimeout (a third or less).
	HeartbeatInterval time.Duration `env:"EYE_KAFKA_HEARTBEAT_INTERVAL, default=1s"`
	// MaxAttempts is how often a batch failing permanently (records the
	// stage can never store) is tried before its records at fault are
	// isolated and dead-lettered; Backoff is the first wait between
	// attempts, doubling up to MaxBackoff (kafkax.ConsumerConfig).
	MaxAttempts int           `env:"EYE_CONSUMER_MAX_ATTEMPTS, default=5"`
	Backoff     time.Duration `env:"EYE_CONSUMER_BACKOFF, default=100ms"`
	MaxBackoff  time.Duration `env:"EYE_CONSUMER_MAX_BACKOFF, default=10s"`
}

// Keys configures API-key checking, for the services that authenticate.
type Keys struct {
	// CacheTTL is how long a key lookup is cached: how soon a revoked key
	// stops working.
	CacheTTL time.Duration `env:"EYE_KEY_CACHE_TTL, default=5s"`
	// DevWriteKey, DevReadKey and DevAdminKey, when set, are registered at
	// start-up for the dev application with the scopes their names say
	// (auth.RegisterDevKeys): write only, read only, read and admin.
	DevWriteKey string `env:"EYE_DEV_WRITE_KEY" secret:"true"`
	DevReadKey  string `env:"EYE_DEV_READ_KEY" secret:"true"`
	DevAdminKey string `env:"EYE_DEV_ADMIN_KEY" secret:"true"`
}

// Logger returns a JSON slog logger for service at the configured level.
func (c Common) Logger(service string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("service", service)
}

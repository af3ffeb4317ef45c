// Package config loads a service's configuration from the environment into
// one struct, read once at start-up. Fields declare their variable with an
// `env` tag and their default with a `default` tag; `secret:"true"` masks a
// value when the configuration is logged.
package config

import (
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Load fills the struct pointed to by dst from the environment.
func Load(dst any) error { return LoadFrom(os.LookupEnv, dst) }

// LoadFrom is Load with a custom lookup, for tests.
func LoadFrom(lookup func(string) (string, bool), dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: want a pointer to a struct, got %T", dst)
	}
	return load(lookup, v.Elem())
}

func load(lookup func(string) (string, bool), v reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
			if err := load(lookup, fv); err != nil {
				return err
			}
			continue
		}
		name := f.Tag.Get("env")
		if name == "" {
			continue
		}
		raw, ok := lookup(name)
		if !ok || raw == "" {
			raw, ok = f.Tag.Lookup("default")
		}
		if !ok {
			continue
		}
		if err := set(fv, raw); err != nil {
			return fmt.Errorf("config: %s=%q: %w", name, raw, err)
		}
	}
	return nil
}

func set(v reflect.Value, raw string) error {
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var out []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		v.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("unsupported field type %s", v.Type())
	}
	return nil
}

// LogValue renders cfg for logging with secret fields masked.
func LogValue(cfg any) slog.Value {
	var attrs []slog.Attr
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			name := f.Tag.Get("env")
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
	LogLevel    string        `env:"EYE_LOG_LEVEL" default:"info"`
	Brokers     string        `env:"EYE_KAFKA_BROKERS" default:"127.0.0.1:9092"`
	TopicPrefix string        `env:"EYE_TOPIC_PREFIX" default:"eye."`
	Partitions  int           `env:"EYE_TOPIC_PARTITIONS" default:"6"`
	Replication int           `env:"EYE_TOPIC_REPLICATION" default:"1"`
	PostgresDSN string        `env:"EYE_POSTGRES_DSN" default:"postgres://eye@127.0.0.1:5432/eye?sslmode=disable" secret:"true"`
	StartupWait time.Duration `env:"EYE_STARTUP_TIMEOUT" default:"60s"`
	// GCPercent is the garbage collector's target (GOGC) the services run
	// with unless the GOGC environment variable is set. They keep little
	// live heap (tens of MB) and, at Go's default of 100, spent 10–15% of
	// their CPU collecting it; 400 trades a few tens of MB for that CPU.
	GCPercent int `env:"EYE_GOGC" default:"400"`
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
	SessionTimeout time.Duration `env:"EYE_KAFKA_SESSION_TIMEOUT" default:"10s"`
	// HeartbeatInterval must be well below SessionTimeout (a third or less).
	HeartbeatInterval time.Duration `env:"EYE_KAFKA_HEARTBEAT_INTERVAL" default:"1s"`
	// MaxAttempts is how often a batch failing permanently (records the
	// stage can never store) is tried before its records at fault are
	// isolated and dead-lettered; Backoff is the first wait between
	// attempts, doubling up to MaxBackoff (kafkax.ConsumerConfig).
	MaxAttempts int           `env:"EYE_CONSUMER_MAX_ATTEMPTS" default:"5"`
	Backoff     time.Duration `env:"EYE_CONSUMER_BACKOFF" default:"100ms"`
	MaxBackoff  time.Duration `env:"EYE_CONSUMER_MAX_BACKOFF" default:"10s"`
}

// Keys configures API-key checking, for the services that authenticate.
type Keys struct {
	// CacheTTL is how long a key lookup is cached: how soon a revoked key
	// stops working.
	CacheTTL time.Duration `env:"EYE_KEY_CACHE_TTL" default:"5s"`
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

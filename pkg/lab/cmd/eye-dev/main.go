// Command eye-dev runs the whole pipeline on one machine without Docker:
// the embedded Kafka-protocol broker (kfake, persisted under EYE_HOME), a
// private Postgres cluster from the local PostgreSQL binaries or, when the
// machine has none, a build fetched once from Maven Central (or
// EYE_POSTGRES_DSN), and the four services as child processes (pkg/lab/harness),
// their output on the terminal and in EYE_HOME/logs. It prints the
// URLs and API keys and runs until Ctrl-C. `make run` builds and starts it.
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/config"
	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/devstack/pgbin"
	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/pg"
)

type cfg struct {
	Home          string `env:"EYE_HOME, default=.eye"`
	BinDir        string `env:"EYE_BIN_DIR, default=bin"`
	PostgresDSN   string `env:"EYE_POSTGRES_DSN" secret:"true"`
	PostgresPort  int    `env:"EYE_DEV_POSTGRES_PORT, default=54329"`
	Brokers       string `env:"EYE_KAFKA_BROKERS"`
	KafkaPort     int    `env:"EYE_DEV_KAFKA_PORT, default=9092"`
	WriteKey      string `env:"EYE_DEV_WRITE_KEY" secret:"true"`
	ReadKey       string `env:"EYE_DEV_READ_KEY" secret:"true"`
	AdminKey      string `env:"EYE_DEV_ADMIN_KEY" secret:"true"`
	GatewayAddr   string `env:"EYE_GATEWAY_ADDR, default=:8080"`
	QueryAddr     string `env:"EYE_QUERY_ADDR, default=:8081"`
	ValidatorAddr string `env:"EYE_VALIDATOR_ADDR, default=:8082"`
	WriterAddr    string `env:"EYE_WRITER_ADDR, default=:8083"`
	SchemaDir     string `env:"EYE_SCHEMA_DIR, default=deploy/schemas"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "eye-dev:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var c cfg
	if err := config.Load(&c); err != nil {
		return err
	}
	home, err := filepath.Abs(c.Home)
	if err != nil {
		return err
	}
	dsn := c.PostgresDSN
	var pgBin string
	if dsn == "" {
		// Found (or downloaded) before the start timeout: a first fetch on
		// a slow link may take longer; Ctrl-C still stops it.
		if pgBin, err = pgbin.Find(ctx, os.Stderr); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	if dsn == "" {
		p, err := devstack.StartPostgres(startCtx, devstack.PostgresOptions{Dir: filepath.Join(home, "postgres"), Port: c.PostgresPort, Durable: true, Bin: pgBin})
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		defer p.Stop()
		dsn = p.DSN("eye")
	}
	db, err := pg.Open(startCtx, dsn)
	if err != nil {
		return err
	}
	err = pg.Migrate(startCtx, db)
	db.Close()
	if err != nil {
		return err
	}

	brokers := c.Brokers
	if brokers == "" {
		k, err := devstack.StartKafka(filepath.Join(home, "kafka"), c.KafkaPort)
		if err != nil {
			return err
		}
		defer k.Close()
		brokers = strings.Join(k.Brokers(), ",")
	}

	keys, err := devKeys(home, auth.DevKeys{Write: c.WriteKey, Read: c.ReadKey, Admin: c.AdminKey})
	if err != nil {
		return err
	}
	schemaDir := ""
	if _, err := os.Stat(c.SchemaDir); err == nil {
		schemaDir = c.SchemaDir // the shipped per-type schemas
	}
	p, err := harness.New(ctx, harness.Options{
		BinDir: c.BinDir, LogDir: filepath.Join(home, "logs"), Output: os.Stdout,
		Brokers: brokers, PostgresDSN: dsn, SchemaDir: schemaDir,
		WriteKey: keys.Write, ReadKey: keys.Read, AdminKey: keys.Admin,
		Addrs: map[harness.Service]string{harness.Gateway: c.GatewayAddr, harness.Query: c.QueryAddr,
			harness.Validator: c.ValidatorAddr, harness.Writer: c.WriterAddr},
	})
	if err != nil {
		return err
	}
	defer p.Stop() // before the broker and Postgres stop
	if err := p.Start(ctx, harness.Services...); err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C while starting
		}
		return fmt.Errorf("%w (run `make build` first?)", err)
	}
	banner(p, keys, c.Home)
	select {
	case <-ctx.Done():
		return nil // the deferred Stop waits for the services
	case crash := <-p.Crashed():
		if ctx.Err() != nil {
			return nil // Ctrl-C in a terminal reaches the services too
		}
		return fmt.Errorf("%s exited on its own (logs in %s)", crash, filepath.Join(home, "logs"))
	}
}

// devKeys returns the configured keys, or keys generated once and kept in
// EYE_HOME/keys.env so they survive restarts like the data does. A key
// missing from an older keys.env (EYE_DEV_ADMIN_KEY) is generated and
// added. A saved read key that is not a read key (an older eye-dev saved
// whatever EYE_DEV_READ_KEY held) is kept: it is registered with read
// scope only whatever its prefix.
func devKeys(home string, keys auth.DevKeys) (auth.DevKeys, error) {
	path := filepath.Join(home, "keys.env")
	saved := map[string]string{}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				saved[k] = v
			}
		}
		f.Close()
	}
	for _, k := range []struct {
		key   *string
		env   string
		scope auth.Scope
	}{
		{&keys.Write, "EYE_DEV_WRITE_KEY", auth.ScopeWrite},
		{&keys.Read, "EYE_DEV_READ_KEY", auth.ScopeRead},
		{&keys.Admin, "EYE_DEV_ADMIN_KEY", auth.ScopeAdmin},
	} {
		if *k.key != "" {
			continue
		}
		if *k.key = saved[k.env]; *k.key != "" {
			continue
		}
		var err error
		if *k.key, err = auth.NewKey(k.scope); err != nil {
			return keys, err
		}
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		return keys, err
	}
	content := "EYE_DEV_WRITE_KEY=" + keys.Write + "\nEYE_DEV_READ_KEY=" + keys.Read + "\nEYE_DEV_ADMIN_KEY=" + keys.Admin + "\n"
	return keys, os.WriteFile(path, []byte(content), 0o600)
}

// banner prints where the services answer and the dev keys.
func banner(p *harness.Pipeline, keys auth.DevKeys, home string) {
	gw := strings.Replace(p.URL(harness.Gateway), "127.0.0.1", "localhost", 1)
	q := strings.Replace(p.URL(harness.Query), "127.0.0.1", "localhost", 1)
	fmt.Printf(`
The Eye is running (Ctrl-C to stop).

  ingest-gateway  %[1]s   (swagger: %[1]s/docs/)
  query-api       %[2]s   (swagger: %[2]s/docs/)

  write key  %[3]s   (ingest only: POST /events/, /sessions/)
  read key   %[4]s   (query only)
  admin key  %[5]s   (query + edits, erasure, replays, keys, schemas)
  (kept in %[6]s)

  curl -X POST %[1]s/events/ -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' \
    -d '{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"page interaction","name":"pageview","data":{"host":"www.example.com","path":"/"},"timestamp":"2021-01-01 09:15:27.243860"}'
  curl '%[2]s/events/?session=9ab1b579-7021-4e0c-8ea1-2ac9f52f3058' -H 'Authorization: Bearer %[4]s'

`, gw, q, keys.Write, keys.Read, keys.Admin, filepath.Join(home, "keys.env"))
}

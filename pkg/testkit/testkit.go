// Package testkit gives tests real infrastructure: a Kafka-protocol broker
// and a Postgres database. Each comes from, in order: the environment
// (EYE_KAFKA_BROKERS, EYE_POSTGRES_DSN), testcontainers when a Docker daemon
// answers, or the embedded broker (kfake) and a private Postgres cluster
// (devstack: the machine's PostgreSQL binaries or a fetched build).
// EYE_TEST_BROKER names the broker outright (kfake, env or
// testcontainers), so that one suite can be run on each: CI runs the
// pipeline's contract tests on Apache Kafka and on kfake. One broker and one cluster serve a whole
// test binary; every test gets its own topics and its own database, cloned
// from a migrated template.
//
// Packages using it call testkit.Main from TestMain so the shared
// infrastructure is torn down at the end; those that use Postgres give it
// the migration that makes the template database (pg.MigrateDSN). The
// package needs nothing of the runtime libraries, so it is a module of its
// own that they can use in their tests.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/the-eye/eye/pkg/devstack"
)

var (
	mu       sync.Mutex
	teardown []func()

	kafkaOnce    sync.Once
	kafkaBrokers []string
	kafkaErr     error

	pgOnce     sync.Once
	pgAdminDSN string // a DSN whose database may be replaced by any other
	pgTemplate string // migrated template database
	pgErr      error
)

// Migration brings the database at dsn to the current schema.
type Migration func(ctx context.Context, dsn string) error

// migrate makes the template database; set by Main.
var migrate Migration

// Main runs the tests and then stops the shared infrastructure. migrate
// makes the schema of the databases Postgres hands out (nil when the tests
// use no Postgres).
func Main(m *testing.M, schema Migration) {
	migrate = schema
	code := m.Run()
	mu.Lock()
	for i := len(teardown) - 1; i >= 0; i-- {
		teardown[i]()
	}
	mu.Unlock()
	os.Exit(code)
}

// TempDir makes a directory (os.MkdirTemp in the default temporary
// directory) that Main removes once the tests have run, before the process
// exits. Use it in TestMain: Main ends with os.Exit, so a RemoveAll
// deferred there never runs.
func TempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	onTeardown(func() { _ = os.RemoveAll(dir) })
	return dir, nil
}

func onTeardown(f func()) {
	mu.Lock()
	teardown = append(teardown, f)
	mu.Unlock()
}

// Kafka returns broker addresses for the test binary's shared broker.
func Kafka(t testing.TB) []string {
	t.Helper()
	kafkaOnce.Do(func() { kafkaBrokers, kafkaErr = startKafka() })
	if kafkaErr != nil {
		t.Fatalf("kafka: %v", kafkaErr)
	}
	return kafkaBrokers
}

// KafkaSource says where Kafka comes from: "env", "testcontainers" or
// "kfake", as EYE_TEST_BROKER names them.
var KafkaSource string

func startKafka() ([]string, error) {
	brokers := os.Getenv("EYE_KAFKA_BROKERS")
	KafkaSource = os.Getenv("EYE_TEST_BROKER")
	switch KafkaSource {
	case "":
		switch {
		case brokers != "":
			KafkaSource = "env"
		case dockerAnswers():
			KafkaSource = "testcontainers"
		default:
			KafkaSource = "kfake"
		}
	case "env", "testcontainers", "kfake":
	default:
		return nil, fmt.Errorf("EYE_TEST_BROKER=%q: want kfake, env or testcontainers (unset: env when EYE_KAFKA_BROKERS is set, else testcontainers when Docker answers, else kfake)", KafkaSource)
	}
	switch KafkaSource {
	case "env":
		if brokers == "" {
			return nil, fmt.Errorf("EYE_TEST_BROKER=env needs EYE_KAFKA_BROKERS")
		}
		return strings.Split(brokers, ","), nil
	case "testcontainers":
		ctx := context.Background()
		c, err := tckafka.Run(ctx, "confluentinc/confluent-local:7.5.0", tckafka.WithClusterID("eye-test"))
		if err != nil {
			return nil, fmt.Errorf("testcontainers kafka: %w", err)
		}
		onTeardown(func() { _ = testcontainers.TerminateContainer(c) })
		return c.Brokers(ctx)
	default:
		k, err := devstack.StartKafka("", 0)
		if err != nil {
			return nil, err
		}
		onTeardown(k.Close)
		return k.Brokers(), nil
	}
}

// TopicPrefix returns a topic prefix unique to this test, so tests sharing a
// broker never see each other's records.
func TopicPrefix(t testing.TB) string {
	return "t" + randomHex(6) + "."
}

// Postgres returns the DSN of a new, migrated database for this test; it is
// dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgErr = startPostgres() })
	if pgErr != nil {
		t.Fatalf("postgres: %v", pgErr)
	}
	name := "test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := devstack.OpenDB(ctx, pgAdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pq.QuoteIdentifier(name), pq.QuoteIdentifier(pgTemplate))); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if db, err := devstack.OpenDB(ctx, pgAdminDSN); err == nil {
			db.ExecContext(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pq.QuoteIdentifier(name)))
			db.Close()
		}
	})
	return withDatabase(pgAdminDSN, name)
}

func startPostgres() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	switch {
	case os.Getenv("EYE_POSTGRES_DSN") != "":
		pgAdminDSN = os.Getenv("EYE_POSTGRES_DSN")
	case dockerAnswers():
		c, err := tcpostgres.Run(ctx, "postgres:16-alpine", tcpostgres.WithDatabase("eye"),
			tcpostgres.WithUsername("eye"), tcpostgres.WithPassword("eye"), tcpostgres.BasicWaitStrategies())
		if err != nil {
			return fmt.Errorf("testcontainers postgres: %w", err)
		}
		onTeardown(func() { _ = testcontainers.TerminateContainer(c) })
		if pgAdminDSN, err = c.ConnectionString(ctx, "sslmode=disable"); err != nil {
			return err
		}
	default:
		dir, err := os.MkdirTemp("", "eye-test-pg-")
		if err != nil {
			return err
		}
		p, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{Dir: dir})
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		onTeardown(func() { p.Stop(); os.RemoveAll(dir) })
		pgAdminDSN = p.DSN("eye")
	}
	pgTemplate = "tmpl_" + randomHex(6)
	admin, err := devstack.OpenDB(ctx, pgAdminDSN)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(pgTemplate)); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	onTeardown(func() {
		if db, err := devstack.OpenDB(context.Background(), pgAdminDSN); err == nil {
			db.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(pgTemplate) + " WITH (FORCE)")
			db.Close()
		}
	})
	if migrate == nil {
		return errors.New("testkit.Postgres needs the schema: pass a migration to testkit.Main (e.g. pg.MigrateDSN)")
	}
	return migrate(ctx, withDatabase(pgAdminDSN, pgTemplate))
}

// dockerAnswers reports whether a Docker daemon is reachable. testcontainers
// panics when it finds no Docker host at all, so that is looked for first
// and a panic still counts as "no".
func dockerAnswers() (ok bool) {
	if os.Getenv("EYE_TEST_NO_DOCKER") != "" {
		return false
	}
	if _, err := os.Stat("/var/run/docker.sock"); err != nil && os.Getenv("DOCKER_HOST") == "" {
		return false
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false
	}
	cli.Close()
	return true
}

func withDatabase(dsn, db string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + db
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

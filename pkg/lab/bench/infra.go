package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/lab/loadgen"
	"github.com/the-eye/eye/pkg/lab/stack"
	"github.com/the-eye/eye/pkg/pg"
)

// broker is a Kafka broker the scenarios run against.
type broker struct {
	name string // "kfake" or "apache"
	addr string
	// fresh, for kfake, replaces the broker by a new, empty one (kfake keeps
	// every record in memory; each scenario starts from an empty broker).
	fresh func(ctx context.Context) error
	stop  func()
	pid   func() int // the broker's process
}

// startKfake runs the embedded broker `make run` uses (devstack.StartKafka,
// with a data directory) in a process of its own: `eye-bench broker`.
func (b *Bench) startKfake(ctx context.Context) (*broker, error) {
	br := &broker{name: "kfake"}
	var proc *harness.Process
	br.pid = func() int {
		if proc == nil {
			return 0
		}
		return proc.Pid()
	}
	n := 0
	br.stop = func() {
		if proc != nil {
			_ = proc.Stop()
			proc = nil
		}
	}
	br.fresh = func(ctx context.Context) error {
		br.stop()
		n++
		port, err := devstack.FreePort()
		if err != nil {
			return err
		}
		dir := filepath.Join(b.work, fmt.Sprintf("kfake-%d", n))
		if err := os.RemoveAll(filepath.Join(b.work, fmt.Sprintf("kfake-%d", n-1))); err != nil {
			return err
		}
		br.addr = fmt.Sprintf("127.0.0.1:%d", port)
		proc = &harness.Process{Name: "kfake", Service: "eye-bench", Bin: filepath.Join(b.bin, "kfake"), NoRestart: true,
			Args:    []string{"broker", "-addr", br.addr, "-data", dir},
			Env:     os.Environ(),
			LogPath: filepath.Join(b.work, "kfake.log")}
		if err := proc.Start(); err != nil {
			return err
		}
		err = stack.Poll(ctx, 30*time.Second, func() bool {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			return kafkax.Ping(pctx, []string{br.addr}) == nil
		})
		if err != nil {
			return fmt.Errorf("kfake: %w\n%s", err, stack.TailFile(proc.LogPath, 2000))
		}
		return nil
	}
	return br, br.fresh(ctx)
}

// startApache runs a real Apache Kafka broker (scripts/kafka.sh) on ports
// of its own.
func (b *Bench) startApache(ctx context.Context) (*broker, error) {
	k, err := stack.NewBroker(b.opt.Root, filepath.Join(b.work, "kafka"))
	if err != nil {
		return nil, err
	}
	if err := k.Start(ctx); err != nil {
		return nil, err
	}
	b.apache = k
	return &broker{name: "apache", addr: k.Addr(), fresh: func(context.Context) error { return nil },
		stop: func() { _ = k.Stop(context.Background()) }, pid: apachePid(k)}, nil
}

// pipeline is one scenario's database, topics and service processes
// (pkg/lab/harness).
type pipeline struct {
	*harness.Pipeline
	b      *Bench
	br     *broker
	name   string
	dir    string
	prefix string
	topics contract.Topics
	db     string
	dsn    string
	apps   []loadgen.App
	appIDs []uuid.UUID
	// adminKey polls GET /events/{id} for the ingest-to-queryable figure:
	// the traffic comes from many applications, which only an admin key sees.
	adminKey string
}

// appCount and appWeight shape the traffic: 16 applications, each with a
// write key of its own, Zipf-like shares (the largest sends 22%), so no
// key reaches the gateway's default per-key rate limit (50 000 events/s)
// below ≈ 220 000 events/s in total.
const appCount = 16

func appWeight(k int) float64 { return 1 / math.Pow(float64(k+1), 0.8) }

// newPipeline creates a fresh database (migrated, with the applications
// and their keys) and fresh topics on br.
func (b *Bench) newPipeline(ctx context.Context, br *broker, name string) (*pipeline, error) {
	b.seq++
	id := randomHex(3)
	p := &pipeline{b: b, br: br, name: name, dir: filepath.Join(b.work, fmt.Sprintf("%02d-%s-%s", b.seq, br.name, name)),
		prefix: fmt.Sprintf("bench.%s.%s.%s.", br.name, name, id), db: fmt.Sprintf("bench_%d_%s", b.seq, id)}
	p.topics = contract.NewTopics(p.prefix)
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, err
	}
	if err := b.createDB(ctx, p.db); err != nil {
		return nil, err
	}
	p.dsn = b.pg.DSN(p.db)
	db, err := pg.Open(ctx, p.dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := pg.Migrate(ctx, db); err != nil {
		return nil, err
	}
	keys, err := auth.NewPGStore(db)
	if err != nil {
		return nil, err
	}
	for k := range appCount {
		app := uuid.New()
		key, err := auth.NewKey(auth.ScopeWrite)
		if err != nil {
			return nil, err
		}
		if err := keys.EnsureApplication(ctx, app, fmt.Sprintf("bench-%02d", k)); err != nil {
			return nil, err
		}
		if err := keys.PutKey(ctx, app, key, "bench", auth.ScopeWrite); err != nil {
			return nil, err
		}
		p.apps = append(p.apps, loadgen.App{Key: key, Weight: appWeight(k)})
		p.appIDs = append(p.appIDs, app)
	}
	if p.adminKey, err = auth.NewKey(auth.ScopeAdmin); err != nil {
		return nil, err
	}
	if err := kafkax.EnsureTopics(ctx, []string{br.addr}, 6, 1, p.topics.All()...); err != nil {
		return nil, err
	}
	// The services' defaults, but for what each run must choose: where
	// the broker and the database are, the topic prefix, and a read key
	// (dev application, read + admin: sees every application's events).
	// They start as each scenario needs them, on free ports.
	p.Pipeline, err = harness.New(ctx, harness.Options{BinDir: b.bin, LogDir: p.dir,
		Brokers: br.addr, PostgresDSN: p.dsn, TopicPrefix: p.prefix, AdminKey: p.adminKey})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// close stops the services and drops the database.
func (p *pipeline) close() {
	for _, err := range p.Stop() {
		p.b.logf("%s: %v", p.name, err)
	}
	if !p.b.opt.Keep {
		p.b.dropDB(p.db)
	}
}

// lag is the summed lag of groups (group suffix → topic), as the broker
// sees it.
func (p *pipeline) lag(ctx context.Context, groups map[string]string) (int64, error) {
	full := map[string]string{}
	for g, t := range groups {
		full[p.prefix+g] = t
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lags, err := stack.Lag(ctx, p.br.addr, full)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, l := range lags {
		sum += l
	}
	return sum, nil
}

func (b *Bench) createDB(ctx context.Context, name string) error {
	admin, err := pg.Open(ctx, b.pg.DSN("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	return err
}

func (b *Bench) dropDB(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pg.Open(ctx, b.pg.DSN("postgres"))
	if err != nil {
		return
	}
	defer admin.Close()
	_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
}

// httpClient keeps connections alive, one per worker, like a fleet of
// clients each with its own connection.
func httpClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sanitize makes s usable in a file name.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}

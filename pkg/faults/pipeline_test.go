package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/stack"
)

// writeKey is the dev write key every scenario's gateway registers.
const writeKey = "eye_w_faults_write_key_0000000000000000"

// pipeline is one scenario's gateway, validators and writers, with topics
// (a prefix of their own) and a database of their own on the shared broker
// and cluster.
type pipeline struct {
	name   string
	dir    string // logs
	prefix string
	topics contract.Topics
	dsn    string
	db     *sqlx.DB // the suite's own connection, for checks
	brk    *broker
	env    []string

	mu         sync.Mutex
	gateway    *instance
	validators []*instance
	writers    []*instance
	retired    []*instance // stopped by churn, kept for their crash records
	seq        map[string]int
}

// newPipeline creates the scenario's database and starts one gateway, one
// validator and one writer, returning once all three are ready.
func newPipeline(ctx context.Context, name, dir string, brk *broker, cluster *pgCluster) (*pipeline, error) {
	dbName := "faults_" + strings.ReplaceAll(name, "-", "_")
	admin, err := pg.Open(ctx, cluster.DSN("postgres"))
	if err != nil {
		return nil, err
	}
	_, err = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(dbName)+" WITH (FORCE)")
	if err == nil {
		_, err = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(dbName))
	}
	admin.Close()
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", dbName, err)
	}
	prefix := "faults." + name + "." + randomHex(3) + "."
	p := &pipeline{
		name: name, dir: dir, prefix: prefix, topics: contract.NewTopics(prefix), dsn: cluster.DSN(dbName),
		brk: brk, seq: map[string]int{},
	}
	p.env = append(os.Environ(),
		"EYE_KAFKA_BROKERS="+brk.Addr(), "EYE_POSTGRES_DSN="+p.dsn, "EYE_TOPIC_PREFIX="+prefix,
		"EYE_TOPIC_PARTITIONS=6", "EYE_DEV_WRITE_KEY="+writeKey, "EYE_LOG_LEVEL=warn", "EYE_PUBLISH_TIMEOUT=3s")
	if p.db, err = pg.Open(ctx, p.dsn); err != nil {
		return nil, err
	}
	// The gateway first: it migrates the database and creates the topics.
	if p.gateway, err = p.newInstance("ingest-gateway"); err == nil {
		err = p.gateway.WaitReady(ctx, 90*time.Second)
	}
	if err == nil {
		_, err = p.AddValidator(ctx)
	}
	if err == nil {
		_, err = p.AddWriter(ctx)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// newInstance starts a new instance of service on a free port.
func (p *pipeline) newInstance(service string) (*instance, error) {
	port, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.seq[service]++
	n := p.seq[service]
	p.mu.Unlock()
	addrVar := map[string]string{"ingest-gateway": "EYE_GATEWAY_ADDR", "validator": "EYE_VALIDATOR_ADDR", "writer": "EYE_WRITER_ADDR"}[service]
	i := &instance{
		Name: fmt.Sprintf("%s-%d", service, n), Service: service, Bin: filepath.Join(binDir, service), URL: fmt.Sprintf("http://127.0.0.1:%d", port),
		Env:     append(append([]string(nil), p.env...), fmt.Sprintf("%s=127.0.0.1:%d", addrVar, port)),
		LogPath: filepath.Join(p.dir, fmt.Sprintf("%s-%d.log", service, n)),
		Redact:  prefixRE,
	}
	return i, i.Start()
}

// AddValidator starts one more validator (same consumer group) and waits
// until it is ready.
func (p *pipeline) AddValidator(ctx context.Context) (*instance, error) {
	return p.add(ctx, "validator", &p.validators)
}

// AddWriter starts one more writer (same consumer groups) and waits until
// it is ready.
func (p *pipeline) AddWriter(ctx context.Context) (*instance, error) {
	return p.add(ctx, "writer", &p.writers)
}

func (p *pipeline) add(ctx context.Context, service string, list *[]*instance) (*instance, error) {
	i, err := p.newInstance(service)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	*list = append(*list, i)
	p.mu.Unlock()
	return i, i.WaitReady(ctx, 90*time.Second)
}

// Remove stops instance k of list with SIGTERM, as a scale-down does.
func (p *pipeline) Remove(list *[]*instance, k int) error {
	p.mu.Lock()
	i := (*list)[k]
	*list = append((*list)[:k:k], (*list)[k+1:]...)
	p.retired = append(p.retired, i)
	p.mu.Unlock()
	return i.Stop()
}

// Crashes lists every unexpected exit of the pipeline's processes.
func (p *pipeline) Crashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, i := range p.all() {
		out = append(out, i.Crashes()...)
	}
	return out
}

func (p *pipeline) all() []*instance {
	var all []*instance
	if p.gateway != nil {
		all = append(all, p.gateway)
	}
	all = append(all, p.validators...)
	all = append(all, p.writers...)
	return append(all, p.retired...)
}

// Close stops every process with SIGTERM and returns the ones that did not
// exit cleanly.
func (p *pipeline) Close() []error {
	p.mu.Lock()
	running := append(append([]*instance{}, p.validators...), p.writers...)
	if p.gateway != nil {
		running = append([]*instance{p.gateway}, running...)
	}
	p.mu.Unlock()
	var errs []error
	for _, i := range running {
		if err := i.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if p.db != nil {
		p.db.Close()
	}
	return errs
}

// LogTails returns the end of every process log, for failure reports.
func (p *pipeline) LogTails() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, i := range p.all() {
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s", i.Name, i.LogPath, stack.TailFile(i.LogPath, 2500))
	}
	return b.String()
}

// groups are the consumer groups and the topic each reads.
func (p *pipeline) groups() map[string]string {
	return map[string]string{
		p.prefix + "validator":     p.topics.Raw,
		p.prefix + "writer.events": p.topics.Events,
		p.prefix + "writer.errors": p.topics.Errors,
	}
}

// Lag asks the broker how many messages each consumer group has not
// committed yet (stack.Lag).
func (p *pipeline) Lag(ctx context.Context) (map[string]int64, error) {
	return stack.Lag(ctx, p.brk.Addr(), p.groups())
}

// LagZero reports whether every group has committed everything, according
// to the broker.
func (p *pipeline) LagZero(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lag, err := p.Lag(ctx)
	if err != nil {
		return false
	}
	for _, l := range lag {
		if l != 0 {
			return false
		}
	}
	return true
}

// MetricLagZero reports whether the running validator and writer export
// eye_consumer_lag 0 for every group they consume (the services' own view
// of the lag, refreshed every 5 s and after each commit).
func (p *pipeline) MetricLagZero(ctx context.Context) bool {
	p.mu.Lock()
	var urls []string
	if len(p.validators) > 0 {
		urls = append(urls, p.validators[0].URL)
	}
	if len(p.writers) > 0 {
		urls = append(urls, p.writers[0].URL)
	}
	p.mu.Unlock()
	seen := 0
	for _, u := range urls {
		samples, err := stack.Scrape(ctx, u+"/metrics", "eye_consumer_lag")
		if err != nil {
			return false
		}
		for _, s := range samples {
			if s.Value != 0 {
				return false
			}
			seen++
		}
	}
	return seen == 3 // validator: raw; writer: events and errors
}

// metricSum adds up the series of a metric on one instance whose labels
// contain label (e.g. `topic="x"`); 0 when there are none.
func metricSum(ctx context.Context, i *instance, metric, label string) float64 {
	samples, err := stack.Scrape(ctx, i.URL+"/metrics", metric)
	if err != nil {
		return 0
	}
	var sum float64
	for _, s := range samples {
		if strings.Contains(s.Series, label) {
			sum += s.Value
		}
	}
	return sum
}

// prefixRE matches a scenario's topic prefix, so that crash reasons group.
var prefixRE = regexp.MustCompile(`faults\.[a-z-]+\.[0-9a-f]+\.`)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

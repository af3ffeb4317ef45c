package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/lab/stack"
	"github.com/the-eye/eye/pkg/pg"
)

// writeKey is the dev write key every scenario's gateway registers.
const writeKey = "eye_w_faults_write_key_0000000000000000"

// pipeline is one scenario's gateway, validators and writers (pkg/lab/harness),
// with topics (a prefix of their own) and a database of their own on the
// shared broker and cluster.
type pipeline struct {
	*harness.Pipeline
	name   string
	prefix string
	topics contract.Topics
	dsn    string
	db     *sqlx.DB // the suite's own connection, for checks
	brk    *broker
}

// newPipeline creates the scenario's database and starts one gateway, one
// validator and one writer, logging into dir, returning once all three are
// ready. They stop when ctx ends, or on Close.
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
	p := &pipeline{name: name, prefix: prefix, topics: contract.NewTopics(prefix), dsn: cluster.DSN(dbName), brk: brk}
	// Supervised like docker-compose's `restart: on-failure`.
	p.Pipeline, err = harness.New(ctx, harness.Options{
		BinDir: binDir, LogDir: dir, Brokers: brk.Addr(), PostgresDSN: p.dsn, TopicPrefix: prefix, Partitions: 6,
		WriteKey: writeKey, Env: []string{"EYE_LOG_LEVEL=warn", "EYE_PUBLISH_TIMEOUT=3s"},
		Restart: true, Redact: prefixRE,
	})
	if err != nil {
		return nil, err
	}
	if p.db, err = pg.Open(ctx, p.dsn); err != nil {
		p.Stop()
		return nil, err
	}
	// The gateway first: it migrates the database and creates the topics.
	err = p.Start(ctx, harness.Gateway)
	if err == nil {
		err = p.Start(ctx, harness.Validator, harness.Writer)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close stops every process with SIGTERM and returns the ones that did not
// exit cleanly.
func (p *pipeline) Close() []error {
	errs := p.Stop()
	p.db.Close()
	return errs
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
	seen := 0
	for _, u := range []string{p.URL(harness.Validator), p.URL(harness.Writer)} {
		if u == "" {
			continue
		}
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

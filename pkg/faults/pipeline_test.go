package faults

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/pg"
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
		name: fmt.Sprintf("%s-%d", service, n), service: service, url: fmt.Sprintf("http://127.0.0.1:%d", port),
		env:     append(append([]string(nil), p.env...), fmt.Sprintf("%s=127.0.0.1:%d", addrVar, port)),
		logPath: filepath.Join(p.dir, fmt.Sprintf("%s-%d.log", service, n)),
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
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s", i.name, i.logPath, tailFile(i.logPath, 2500))
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
// committed yet: end offset minus committed offset, summed over
// partitions, the definition of eye_consumer_lag. A group that committed
// nothing on a partition counts from its log start.
func (p *pipeline) Lag(ctx context.Context) (map[string]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(p.brk.Addr()), Timeout: 5 * time.Second}
	out := map[string]int64{}
	for group, topic := range p.groups() {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return nil, err
		}
		if len(md.Topics) != 1 || md.Topics[0].Error != nil {
			return nil, fmt.Errorf("metadata of %s: %v", topic, md.Topics)
		}
		var ids []int
		var ends, starts []kafka.OffsetRequest
		for _, part := range md.Topics[0].Partitions {
			ids = append(ids, part.ID)
			ends = append(ends, kafka.LastOffsetOf(part.ID))
			starts = append(starts, kafka.FirstOffsetOf(part.ID))
		}
		committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
		if err == nil && committed.Error != nil {
			err = committed.Error
		}
		if err != nil {
			return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
		}
		end, err := listOffsets(ctx, client, topic, ends, func(o kafka.PartitionOffsets) int64 { return o.LastOffset })
		if err != nil {
			return nil, err
		}
		start, err := listOffsets(ctx, client, topic, starts, func(o kafka.PartitionOffsets) int64 { return o.FirstOffset })
		if err != nil {
			return nil, err
		}
		var lag int64
		for _, c := range committed.Topics[topic] {
			if c.Error != nil {
				return nil, c.Error
			}
			from := c.CommittedOffset
			if from < 0 {
				from = start[c.Partition]
			}
			lag += max(0, end[c.Partition]-from)
		}
		out[group] = lag
	}
	return out, nil
}

// listOffsets asks for reqs (one offset per partition: brokers refuse a
// partition listed twice) and returns the one pick selects, by partition.
func listOffsets(ctx context.Context, client *kafka.Client, topic string, reqs []kafka.OffsetRequest, pick func(kafka.PartitionOffsets) int64) (map[int]int64, error) {
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	out := map[int]int64{}
	for _, o := range res.Topics[topic] {
		if o.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, o.Partition, o.Error)
		}
		out[o.Partition] = pick(o)
	}
	return out, nil
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
		urls = append(urls, p.validators[0].url)
	}
	if len(p.writers) > 0 {
		urls = append(urls, p.writers[0].url)
	}
	p.mu.Unlock()
	seen := 0
	for _, u := range urls {
		samples, err := scrape(ctx, u+"/metrics", "eye_consumer_lag")
		if err != nil {
			return false
		}
		for _, s := range samples {
			if s.value != 0 {
				return false
			}
			seen++
		}
	}
	return seen == 3 // validator: raw; writer: events and errors
}

// sample is one series of a scraped metric: its name and labels as
// written, and its value.
type sample struct {
	series string
	value  float64
}

// scrape returns the series of a metric from a Prometheus text endpoint.
func scrape(ctx context.Context, url, metric string) ([]sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, res.Status)
	}
	var out []sample
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		out = append(out, sample{f[0], v})
	}
	return out, sc.Err()
}

// metricSum adds up the series of a metric on one instance whose labels
// contain label (e.g. `topic="x"`); 0 when there are none.
func metricSum(ctx context.Context, i *instance, metric, label string) float64 {
	samples, err := scrape(ctx, i.url+"/metrics", metric)
	if err != nil {
		return 0
	}
	var sum float64
	for _, s := range samples {
		if strings.Contains(s.series, label) {
			sum += s.value
		}
	}
	return sum
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

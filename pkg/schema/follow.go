package schema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/kafkax"
)

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	Brokers  []string
	Topic    string // the schemas topic (contract.Topics.Schemas)
	Registry *Registry
	Logger   *slog.Logger
}

// Follower keeps a Registry equal to the schemas topic: it reads every
// partition from the first offset, without a consumer group (every process
// needs every record, and there is nothing to commit), and goes on reading
// new records as query-api publishes them, so a new version applies within
// about a second, without a restart.
type Follower struct {
	cfg    FollowerConfig
	synced chan struct{}
	once   sync.Once
}

// NewFollower returns a follower; it connects when it runs.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	switch {
	case len(cfg.Brokers) == 0 || cfg.Topic == "":
		return nil, errors.New("schema: follower needs brokers and a topic")
	case cfg.Registry == nil || cfg.Logger == nil:
		return nil, errors.New("schema: follower needs a registry and a logger")
	}
	return &Follower{cfg: cfg, synced: make(chan struct{})}, nil
}

// Synced is closed once the registry holds every record that was on the
// topic when Run started: events validated before that could miss a schema.
func (f *Follower) Synced() <-chan struct{} { return f.synced }

// Ready fails until the follower is synced, for readiness probes.
func (f *Follower) Ready(context.Context) error {
	select {
	case <-f.synced:
		return nil
	default:
		return errors.New("schemas not loaded yet")
	}
}

// Run follows the topic until ctx ends; it returns nil then, and Kafka
// errors do not end it: until the topic answers, and whenever the broker goes
// away later, it retries, logging a few lines at a time (kafkax.Retry).
func (f *Follower) Run(ctx context.Context) error {
	ends, err := f.ends(ctx)
	if err != nil || ctx.Err() != nil {
		return err
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		pending = len(ends)
		first   error
	)
	caughtUp := func() {
		mu.Lock()
		defer mu.Unlock()
		if pending--; pending == 0 {
			f.once.Do(func() { close(f.synced) })
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for p, end := range ends {
		wg.Go(func() {
			if err := f.follow(runCtx, p, end, sync.OnceFunc(caughtUp)); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}

// partitionEnd is where a partition's log starts and ends (the offset the
// next record will get) when the follower starts.
type partitionEnd struct{ first, last int64 }

// ends reads the topic's partitions and their offsets, retrying until they
// are known or ctx ends.
func (f *Follower) ends(ctx context.Context) (map[int]partitionEnd, error) {
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(f.cfg.Brokers...), Timeout: 10 * time.Second, Transport: transport}
	retry := kafkax.Retry{Log: f.cfg.Logger.With("topic", f.cfg.Topic), What: "reading the schemas topic's offsets", Max: time.Second}
	for {
		ends, err := f.listEnds(ctx, client)
		if err == nil {
			retry.Succeeded()
			return ends, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		retry.Failed(err)
		if !retry.Wait(ctx) {
			return nil, nil
		}
	}
}

func (f *Follower) listEnds(ctx context.Context, client *kafka.Client) (map[int]partitionEnd, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{f.cfg.Topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) == 0 {
		return nil, fmt.Errorf("topic %s not found", f.cfg.Topic)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{f.cfg.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	ends := make(map[int]partitionEnd)
	for _, po := range res.Topics[f.cfg.Topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of partition %d: %w", po.Partition, po.Error)
		}
		ends[po.Partition] = partitionEnd{first: po.FirstOffset, last: po.LastOffset}
	}
	if len(ends) != len(md.Topics[0].Partitions) {
		return nil, errors.New("list offsets: partitions missing from the answer")
	}
	return ends, nil
}

// follow reads one partition from its first offset, calling caughtUp once
// it has read up to end.
func (f *Follower) follow(ctx context.Context, partition int, end partitionEnd, caughtUp func()) error {
	log := f.cfg.Logger.With("topic", f.cfg.Topic, "partition", partition)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   f.cfg.Brokers,
		Topic:     f.cfg.Topic,
		Partition: partition,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   250 * time.Millisecond,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug("kafka reader", "msg", fmt.Sprintf(msg, args...))
		}),
	})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return fmt.Errorf("schemas: set offset: %w", err)
	}
	if end.last <= end.first {
		caughtUp()
	}
	// Read errors (the broker went away) are ridden out: the reader
	// reconnects by itself and resumes at its offset.
	retry := kafkax.Retry{Log: log, What: "reading schemas"}
	for {
		m, ok := kafkax.Next(ctx, r, &retry, nil)
		if !ok {
			return nil
		}
		f.apply(log, m)
		if m.Offset+1 >= end.last {
			caughtUp()
		}
	}
}

// apply puts one record into the registry. A record that is not a schema
// this process can compile is logged and skipped: it cannot be fixed by
// reading it again, and query-api compiled it with the same library.
func (f *Follower) apply(log *slog.Logger, m kafka.Message) {
	if m.Value == nil { // a deletion marker: the key's version is gone
		if t, v, ok := parseKey(string(m.Key)); ok {
			f.cfg.Registry.Remove(t, v)
			log.Info("schema removed", "schema", t.String()+"/"+strconv.Itoa(v))
		}
		return
	}
	var rec contract.Schema
	if err := contract.Decode(m.Value, &rec); err != nil {
		log.Error("not a schema record: skipped", "offset", m.Offset, "err", err)
		return
	}
	s, err := Compile(rec.Category, rec.Name, rec.Version, rec.Schema)
	if err != nil {
		log.Error("schema does not compile: skipped", "offset", m.Offset, "schema", rec.Category+"/"+rec.Name+"/"+strconv.Itoa(rec.Version), "err", err)
		return
	}
	f.cfg.Registry.Put(s)
	log.Debug("schema loaded", "schema", s.Ref())
}

// parseKey reads a contract.SchemaKey.
func parseKey(key string) (Type, int, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 {
		return Type{}, 0, false
	}
	c, err1 := url.PathUnescape(parts[0])
	n, err2 := url.PathUnescape(parts[1])
	v, err3 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return Type{}, 0, false
	}
	return Type{c, n}, v, true
}

package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/lab/loadgen"
	"github.com/the-eye/eye/pkg/lab/stack"
	"github.com/the-eye/eye/pkg/pg"
)

// Targets of the issue, for this 2-core machine with the load generator on
// it.
const (
	targetSingleP99   = 20 * time.Millisecond
	targetBatchEvents = 100_000
	targetE2E         = 30_000
	targetVisibleP99  = 250 * time.Millisecond
)

// batchSize is the events per request of scenarios 2 and 5: pkg/client's
// default batch.
const batchSize = 100

func (b *Bench) warmup() time.Duration {
	if b.opt.Quick {
		return time.Second
	}
	return 3 * time.Second
}

// --- 1. gateway, one event per request, vs a gin handler answering 202 ---

func (b *Bench) gatewaySingle(ctx context.Context, br *broker) error {
	p, err := b.newPipeline(ctx, br, "gateway-single")
	if err != nil {
		return err
	}
	defer p.close()
	if err := p.Start(ctx, harness.Gateway); err != nil {
		return err
	}
	const conns, bound = 64, 256
	client := httpClient(bound)
	gens := generators(p.apps, bound, 1)
	url := p.URL(harness.Gateway) + "/events/"
	op := postOp(client, url, p.apps, gens, bodySingle, 1, nil)

	// The physical limit: a gin engine with one route answering 202, as a
	// process of its own on loopback, hit by the same generator with the
	// same bodies.
	port, err := devstack.FreePort()
	if err != nil {
		return err
	}
	gin := &harness.Process{Name: "gin202", Service: "eye-bench", Bin: filepath.Join(b.bin, "gin202"), NoRestart: true,
		Args: []string{"gin202", "-addr", fmt.Sprintf("127.0.0.1:%d", port)}, Env: os.Environ(),
		URL: fmt.Sprintf("http://127.0.0.1:%d", port), LogPath: filepath.Join(p.dir, "gin202.log")}
	if err := gin.Start(); err != nil {
		return err
	}
	defer gin.Stop()
	if err := gin.WaitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	ginOp := postOp(client, gin.URL+"/events/", p.apps, gens, bodySingle, 1, nil)

	gw := b.groups(br, p, string(harness.Gateway), "generator", "broker")
	gn := b.groups(br, p, "generator")
	gn["gin202"] = procCPU(gin.Pid)
	if _, err := loadgen.Run(ctx, loadgen.Config{Duration: b.warmup(), Workers: conns}, op); err != nil {
		return err
	}
	var gwMax loadgen.Result
	var gwMaxC Cores
	err = b.profile(br, "1-gateway-single-max", string(harness.Gateway), func() error {
		var err error
		gwMax, gwMaxC, err = b.load(ctx, gw, loadgen.Config{Duration: b.opt.Phase, Workers: conns}, op)
		return err
	})
	if err != nil {
		return err
	}
	gwOpen, gwOpenC, err := b.load(ctx, gw, loadgen.Config{Rate: b.opt.TargetRate, Duration: b.opt.Phase, Workers: bound}, op)
	if err != nil {
		return err
	}
	if _, err := loadgen.Run(ctx, loadgen.Config{Duration: b.warmup(), Workers: conns}, ginOp); err != nil {
		return err
	}
	ginMax, ginMaxC, err := b.load(ctx, gn, loadgen.Config{Duration: b.opt.Phase, Workers: conns}, ginOp)
	if err != nil {
		return err
	}
	ginOpen, ginOpenC, err := b.load(ctx, gn, loadgen.Config{Rate: b.opt.TargetRate, Duration: b.opt.Phase, Workers: bound}, ginOp)
	if err != nil {
		return err
	}
	// Latency at a load the gateway can carry: half the most it answered
	// (closed loop, or open loop at the target rate), open loop.
	half := max(gwMax.RequestsPerSec(), gwOpen.RequestsPerSec()) / 2
	gwHalf, gwHalfC, err := b.load(ctx, gw, loadgen.Config{Rate: half, Duration: b.opt.Phase, Workers: bound}, op)
	if err != nil {
		return err
	}

	const c = "gateway, 1 event/request"
	b.add(fig(1, br, c, "pipeline", fmt.Sprintf("closed loop, %d connections", conns), gwMax, "closed loop", ratio(gwMax.EventsPerSec(), ginMax.EventsPerSec()), gwMaxC))
	b.add(fig(1, br, c, "pipeline", fmt.Sprintf("open loop, %.0f req/s offered", b.opt.TargetRate), gwOpen, "from intended send", 0, gwOpenC))
	b.add(fig(1, br, c, "pipeline", fmt.Sprintf("open loop, %.0f req/s offered (half the most it answered)", half), gwHalf, "from intended send", 0, gwHalfC))
	b.add(fig(1, br, "gin handler answering 202", "limit", fmt.Sprintf("closed loop, %d connections", conns), ginMax, "closed loop", 0, ginMaxC))
	b.add(fig(1, br, "gin handler answering 202", "limit", fmt.Sprintf("open loop, %.0f req/s offered", b.opt.TargetRate), ginOpen, "from intended send", 0, ginOpenC))
	met := gwOpen.Held() && gwOpen.RequestsPerSec() >= 0.98*b.opt.TargetRate && gwOpen.Latency.P99 < targetSingleP99
	b.target(br.name, "≥ 15 000 single-event requests/s with p99 < 20 ms",
		fmt.Sprintf("%.0f req/s answered of %.0f offered, p99 %s (closed-loop maximum %.0f req/s)",
			gwOpen.RequestsPerSec(), b.opt.TargetRate, msd(gwOpen.Latency.P99), gwMax.RequestsPerSec()), met)
	return p.checkCrashes()
}

// --- 2. gateway, 100-event batches, vs a raw kafka-go writer ---

func (b *Bench) gatewayBatches(ctx context.Context, br *broker) error {
	p, err := b.newPipeline(ctx, br, "gateway-batch")
	if err != nil {
		return err
	}
	defer p.close()
	if err := p.Start(ctx, harness.Gateway); err != nil {
		return err
	}
	const conns = 16
	client := httpClient(conns)
	gens := generators(p.apps, conns, 2)
	url := p.URL(harness.Gateway) + "/events/"
	array := postOp(client, url, p.apps, gens, bodyArray, batchSize, nil)
	ndjson := postOp(client, url, p.apps, gens, bodyNDJSON, batchSize, nil)

	gw := b.groups(br, p, string(harness.Gateway), "generator", "broker")
	if _, err := loadgen.Run(ctx, loadgen.Config{Duration: b.warmup(), Workers: conns}, array); err != nil {
		return err
	}
	var arr loadgen.Result
	var arrC Cores
	err = b.profile(br, "2-gateway-array-max", string(harness.Gateway), func() error {
		var err error
		arr, arrC, err = b.load(ctx, gw, loadgen.Config{Duration: b.opt.Phase, Workers: conns}, array)
		return err
	})
	if err != nil {
		return err
	}
	nd, ndC, err := b.load(ctx, gw, loadgen.Config{Duration: b.opt.Phase, Workers: conns}, ndjson)
	if err != nil {
		return err
	}

	// The physical limit: the same raw-topic messages (envelope, key and
	// headers as the gateway makes them), encoded beforehand, produced by
	// a kafka-go writer configured as the gateway's producer, 100 per
	// WriteMessages call, from as many goroutines as HTTP connections.
	ring := make([][]kafka.Message, 200)
	g := loadgen.NewGenerator(p.apps, 200, 3)
	for i := range ring {
		msgs := make([]contract.Message, 0, batchSize)
		for _, e := range g.Batch(batchSize) {
			m, err := contract.Encode(p.topics.Raw, e.Session.String(), &contract.RawEvent{EventID: e.ID, AppID: p.appIDs[e.App],
				ReceivedAt: time.Now().UTC(), Payload: contract.NewPayload(loadgen.Single(e))})
			if err != nil {
				return err
			}
			msgs = append(msgs, m)
		}
		ring[i] = kafkax.ToKafka(msgs)
	}
	w := kafkax.NewWriter(br.addr)
	defer w.Close()
	var next atomic.Int64
	raw := func(ctx context.Context, _ int) (int, error) {
		msgs := ring[next.Add(1)%int64(len(ring))]
		return len(msgs), w.WriteMessages(ctx, msgs...)
	}
	if _, err := loadgen.Run(ctx, loadgen.Config{Duration: b.warmup(), Workers: conns}, raw); err != nil {
		return err
	}
	lim, limC, err := b.load(ctx, b.groups(br, p, "generator", "broker"), loadgen.Config{Duration: b.opt.Phase, Workers: conns}, raw)
	if err != nil {
		return err
	}

	mode := fmt.Sprintf("closed loop, %d connections", conns)
	b.add(fig(2, br, "gateway, JSON arrays of 100", "pipeline", mode, arr, "closed loop", ratio(arr.EventsPerSec(), lim.EventsPerSec()), arrC))
	b.add(fig(2, br, "gateway, NDJSON streams of 100", "pipeline", mode, nd, "closed loop", ratio(nd.EventsPerSec(), lim.EventsPerSec()), ndC))
	b.add(fig(2, br, "raw kafka-go writer", "limit", fmt.Sprintf("closed loop, %d goroutines × 100 messages", conns), lim, "closed loop", 0, limC))
	best := max(arr.EventsPerSec(), nd.EventsPerSec())
	b.target(br.name, "≥ 100 000 events/s in batches",
		fmt.Sprintf("arrays %.0f, NDJSON %.0f events/s", arr.EventsPerSec(), nd.EventsPerSec()), best >= targetBatchEvents)
	return p.checkCrashes()
}

// --- 3. validator relay vs a raw consume-and-produce loop ---

func (b *Bench) validatorRelay(ctx context.Context, br *broker) error {
	p, err := b.newPipeline(ctx, br, "validator")
	if err != nil {
		return err
	}
	defer p.close()
	total := int64(b.opt.Backlog)
	g := loadgen.NewGenerator(p.apps, 2000, 4)
	err = p.preload(ctx, total, func() (contract.Message, error) {
		e := g.Next()
		return contract.Encode(p.topics.Raw, e.Session.String(), &contract.RawEvent{EventID: e.ID, AppID: p.appIDs[e.App],
			ReceivedAt: time.Now().UTC(), Payload: contract.NewPayload(loadgen.Single(e))})
	})
	if err != nil {
		return err
	}
	b.logf("3/%s: %d raw events preloaded", br.name, total)

	// The physical limit: fetch, produce to another topic, commit; no
	// decoding, no validation.
	copyTopic := p.prefix + "relay.copy.v1"
	if err := kafkax.EnsureTopics(ctx, []string{br.addr}, 6, 1, copyTopic); err != nil {
		return err
	}
	rctx, cancel := context.WithCancelCause(ctx)
	relayDone := make(chan error, 1)
	started := time.Now()
	go func() {
		err := rawRelay(rctx, br.addr, p.prefix+"rawrelay", p.topics.Raw, copyTopic, total)
		if err != nil {
			cancel(err)
		}
		relayDone <- err
	}()
	var lim drained
	limC, err := measure(b.groups(br, p, "generator", "broker"), func() error {
		var err error
		lim, err = p.drain(rctx, "rawrelay", p.topics.Raw, total, started)
		return err
	})
	cancel(nil)
	if rerr := <-relayDone; rerr != nil && !errors.Is(rerr, context.Canceled) {
		return rerr
	}
	if err != nil {
		return fmt.Errorf("raw relay: %w", err)
	}

	var val drained
	var valC Cores
	err = b.profile(br, "3-validator-drain", string(harness.Validator), func() error {
		started := time.Now()
		if err := p.Start(ctx, harness.Validator); err != nil {
			return err
		}
		var err error
		valC, err = measure(b.groups(br, p, string(harness.Validator), "broker", "generator"), func() error {
			var err error
			val, err = p.drain(ctx, "validator", p.topics.Raw, total, started)
			return err
		})
		return err
	})
	if err != nil {
		return err
	}
	out, _ := stack.EndOffsets(ctx, br.addr, p.topics.Events)
	errs, _ := stack.EndOffsets(ctx, br.addr, p.topics.Errors)
	note := ""
	if out+errs < total || errs > 0 {
		note = fmt.Sprintf("%d valid and %d error records for %d raw events", out, errs, total)
	}
	b.add(Figure{Scenario: 3, Broker: br.name, Case: "validator", Kind: "pipeline", Mode: fmt.Sprintf("drain a %d-event backlog", total),
		EventsPerSec: val.rate(), Ratio: ratio(val.rate(), lim.rate()), Note: joinNotes(val.note(), note), Cores: valC})
	b.add(Figure{Scenario: 3, Broker: br.name, Case: "raw consume-produce-commit loop", Kind: "limit", Mode: fmt.Sprintf("drain a %d-event backlog", total),
		EventsPerSec: lim.rate(), Note: lim.note(), Cores: limC})
	return p.checkCrashes()
}

// --- 4. writer draining a backlog vs a raw COPY of the same rows ---

func (b *Bench) writerDrain(ctx context.Context, br *broker) error {
	p, err := b.newPipeline(ctx, br, "writer")
	if err != nil {
		return err
	}
	defer p.close()
	total := b.opt.Backlog
	g := loadgen.NewGenerator(p.apps, 2000, 5)
	events := make([]contract.Event, 0, total)
	err = p.preload(ctx, int64(total), func() (contract.Message, error) {
		e := g.Next()
		ts := e.Timestamp.Truncate(time.Microsecond)
		ev := contract.Event{ID: e.ID, AppID: p.appIDs[e.App], SessionID: e.Session, Category: e.Category, Name: e.Name,
			Data: e.Data, Timestamp: ts, ClientTimestamp: ts, ReceivedAt: time.Now().UTC().Truncate(time.Microsecond)}
		events = append(events, ev)
		return contract.Encode(p.topics.Events, e.Session.String(), &ev)
	})
	if err != nil {
		return err
	}
	b.logf("4/%s: %d valid events preloaded", br.name, total)

	// The physical limit: the same rows COPYed into the same (migrated,
	// empty) schema, in 5 000-row transactions on one connection.
	copyDB := p.db + "_copy"
	if err := b.createDB(ctx, copyDB); err != nil {
		return err
	}
	defer b.dropDB(copyDB)
	var copyTook time.Duration
	copyC, err := measure(b.groups(br, p, "generator", "postgres"), func() error {
		var err error
		copyTook, err = rawCopy(ctx, b.pg.DSN(copyDB), events, 5000)
		return err
	})
	if err != nil {
		return fmt.Errorf("raw COPY: %w", err)
	}
	limRate := float64(total) / copyTook.Seconds()

	if err := p.checkpoint(ctx); err != nil {
		return err
	}
	var wr drained
	var wrC Cores
	err = b.profile(br, "4-writer-drain", string(harness.Writer), func() error {
		started := time.Now()
		if err := p.Start(ctx, harness.Writer); err != nil {
			return err
		}
		var err error
		wrC, err = measure(b.groups(br, p, string(harness.Writer), "postgres", "broker", "generator"), func() error {
			var err error
			wr, err = p.drain(ctx, "writer.events", p.topics.Events, int64(total), started)
			return err
		})
		return err
	})
	if err != nil {
		return err
	}
	var stored int64
	if db, err := pg.Open(ctx, p.dsn); err == nil {
		_ = db.GetContext(ctx, &stored, "SELECT count(*) FROM events")
		db.Close()
	}
	note := ""
	if stored != int64(total) {
		note = fmt.Sprintf("%d rows stored for %d events", stored, total)
	}
	b.add(Figure{Scenario: 4, Broker: br.name, Case: "writer", Kind: "pipeline", Mode: fmt.Sprintf("drain a %d-event backlog", total),
		EventsPerSec: wr.rate(), Ratio: ratio(wr.rate(), limRate), Note: joinNotes(wr.note(), note), Cores: wrC})
	b.add(Figure{Scenario: 4, Broker: br.name, Case: "raw COPY of the same rows", Kind: "limit", Mode: "5 000-row transactions, 1 connection",
		EventsPerSec: limRate, Cores: copyC})
	return p.checkCrashes()
}

// --- 5. end to end ---

// step is one held rate of scenario 5.
type step struct {
	rate    float64 // events/s offered
	res     loadgen.Result
	maxLag  int64         // consumer lag (validator + writer) in the step's last third: the most
	meanLag float64       // and the mean
	drain   time.Duration // from the load's end until the lag is 0
	held    bool
	why     string
	visible *loadgen.Histogram // 202 → visible in query-api (sampled)
	cores   Cores
	lost    int64 // samples never visible within 30 s
}

func (b *Bench) endToEnd(ctx context.Context, br *broker) error {
	rates := []float64{20000, 30000, 40000, 50000, 60000, 70000}
	if b.opt.Quick {
		rates = []float64{10000, 20000}
	}
	var best, failed *step
	try := func(rate float64) (*step, error) {
		s, err := b.e2eStep(ctx, br, rate, false)
		if err == nil {
			b.logf("5/%s: %.0f events/s: held %v (%s); %s", br.name, rate, s.held, s.why, s.res.String())
		}
		return s, err
	}
	for i, rate := range rates {
		s, err := try(rate)
		if err != nil {
			return err
		}
		if s.held {
			best = s
			continue
		}
		failed = s
		if i == 0 { // not even the first: go down
			for _, lower := range []float64{rate / 2, rate / 4} {
				if s, err = try(lower); err != nil {
					return err
				}
				if s.held {
					best = s
					break
				}
				failed = s
			}
		}
		break
	}
	// One more step halfway between the highest rate held and the first
	// not held narrows the answer to 5 000 events/s (2 500 in quick mode).
	if best != nil && failed != nil && failed.rate-best.rate > 5000 {
		mid := math.Round((best.rate+failed.rate)/2/2500) * 2500
		s, err := try(mid)
		if err != nil {
			return err
		}
		if s.held {
			best = s
		} else {
			failed = s
		}
	}
	if best != nil {
		b.add(e2eFigure(br, "end to end, sustained (highest rate held)", best))
	}
	if failed != nil {
		f := e2eFigure(br, "end to end, first rate not held", failed)
		f.Kind = "pipeline-fail"
		b.add(f)
	}
	sustained := 0.0
	if best != nil {
		sustained = best.rate
	}
	b.target(br.name, "end to end ≥ 30 000 events/s sustained", fmt.Sprintf("%.0f events/s held for %s", sustained, b.opt.Step), sustained >= targetE2E)

	halfRate := sustained / 2
	if halfRate == 0 {
		halfRate = 2500
	}
	s, err := b.e2eStep(ctx, br, halfRate, true)
	if err != nil {
		return err
	}
	vis := s.visible.Summary()
	f := Figure{Scenario: 5, Broker: br.name, Case: "ingest → queryable", Kind: "pipeline",
		Mode: fmt.Sprintf("open loop, %.0f events/s (half the sustained rate)", halfRate), EventsPerSec: s.res.EventsPerSec(),
		Latency: &vis, LatencyKind: "202 → visible in query-api", Run: &s.res,
		Note: joinNotes(fmt.Sprintf("%d sampled events, polled every 20 ms", vis.Count), lostNote(s.lost), heldNote(s)), Cores: s.cores}
	b.add(f)
	b.target(br.name, "ingest-to-queryable p99 ≤ 250 ms at half the sustained rate",
		fmt.Sprintf("p99 %s at %.0f events/s", msd(vis.P99), halfRate), s.held && s.lost == 0 && vis.Count > 0 && vis.P99 <= targetVisibleP99)
	return nil
}

func e2eFigure(br *broker, c string, s *step) Figure {
	return Figure{Scenario: 5, Broker: br.name, Case: c, Kind: "pipeline",
		Mode:         fmt.Sprintf("open loop, %.0f events/s offered as 100-event arrays", s.rate),
		EventsPerSec: s.res.EventsPerSec(), Latency: &s.res.Latency, LatencyKind: "HTTP, from intended send", Run: &s.res,
		Note: joinNotes(fmt.Sprintf("lag in the last third: mean %.0f, max %d; drained in %.1fs", s.meanLag, s.maxLag, s.drain.Seconds()), heldNote(s)), Cores: s.cores}
}

func heldNote(s *step) string {
	if s.held {
		return ""
	}
	return "not held: " + s.why
}

func lostNote(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d sampled events not visible within 30 s", n)
}

// e2eStep runs the four services on a fresh broker (kfake), topics and
// database, offers rate events/s for opt.Step, and judges whether the
// pipeline held it: every request sent and accepted; the consumers' lag
// (validator and writer, sampled every second) in the last third of the
// step under 2 s worth of events on average and not growing (at most 1.5×
// the middle third's mean plus 0.5 s of events); drained within 15 s after
// the load; no service exiting. With probe, one request in two has its
// first event polled in query-api until visible.
// warmUp is how long an end-to-end step runs its load before it measures.
const warmUp = 3 * time.Second

func (b *Bench) e2eStep(ctx context.Context, br *broker, rate float64, probe bool) (*step, error) {
	if err := br.fresh(ctx); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("e2e-%.0f", rate)
	if probe {
		name += "-latency"
	}
	p, err := b.newPipeline(ctx, br, name)
	if err != nil {
		return nil, err
	}
	defer p.close()
	if err := p.Start(ctx, harness.Services...); err != nil {
		return nil, err
	}
	const bound = 256
	client := httpClient(bound)
	gens := generators(p.apps, bound, uint64(rate))
	s := &step{rate: rate, visible: &loadgen.Histogram{}}

	var onAck func(int, sent)
	var probes sync.WaitGroup
	var lost atomic.Int64
	var once sync.Once
	stopProbes := func() {}
	defer func() { once.Do(stopProbes) }()
	if probe {
		queue := make(chan sent, 100000)
		var n atomic.Int64
		onAck = func(_ int, x sent) {
			if n.Add(1)%2 == 0 {
				select {
				case queue <- x:
				default:
					lost.Add(1)
				}
			}
		}
		qclient := httpClient(32)
		base := p.URL(harness.Query) + "/events/"
		for range 32 {
			probes.Go(func() {
				for x := range queue {
					if !waitVisible(ctx, qclient, base+x.first.String(), p.adminKey, x.acked, s.visible) {
						lost.Add(1)
					}
				}
			})
		}
		stopProbes = func() {
			close(queue)
			probes.Wait()
		}
	}
	op := postOp(client, p.URL(harness.Gateway)+"/events/", p.apps, gens, bodyArray, batchSize, onAck)

	groups := map[string]string{"validator": p.topics.Raw, "writer.events": p.topics.Events}
	// Warm up first: the same load for warmUp, then wait for the consumers
	// to catch up, so the step measures a running pipeline rather than its
	// start (the consumers' first group join took a few hundred ms on
	// Apache Kafka, which alone made the p99 of ingest → queryable).
	warm := postOp(client, p.URL(harness.Gateway)+"/events/", p.apps, gens, bodyArray, batchSize, nil)
	if _, err := loadgen.Run(ctx, loadgen.Config{Rate: rate / batchSize, Duration: warmUp, Workers: bound}, warm); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if err := p.caughtUp(ctx, groups); err != nil {
		return nil, fmt.Errorf("warm-up: the consumers did not catch up: %w", err)
	}
	lagCtx, stopLag := context.WithCancel(ctx)
	type sample struct {
		at  time.Time
		lag int64
	}
	var lags []sample
	var lagWG sync.WaitGroup
	lagWG.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-lagCtx.Done():
				return
			case <-t.C:
				if l, err := p.lag(lagCtx, groups); err == nil {
					lags = append(lags, sample{time.Now(), l})
				}
			}
		}
	})
	start := time.Now()
	var names []string
	for _, s := range harness.Services {
		names = append(names, string(s))
	}
	all := b.groups(br, p, append(names, "postgres", "broker", "generator")...)
	phase := func() error {
		var err error
		s.res, s.cores, err = b.load(ctx, all, loadgen.Config{Rate: rate / batchSize, Duration: b.opt.Step, Workers: bound}, op)
		return err
	}
	if probe {
		err = phase()
	} else {
		err = b.profile(br, name, string(harness.Gateway), phase)
	}
	stopLag()
	lagWG.Wait()
	if err != nil {
		return nil, err
	}
	// The lag in the middle and in the last third of the step: a pipeline
	// that keeps up has a lag that comes and goes with its batches; one
	// that does not has a lag that grows with time.
	mid, last := start.Add(b.opt.Step/3), start.Add(2*b.opt.Step/3)
	var midSum, lastSum, midN, lastN int64
	for _, l := range lags {
		switch {
		case l.at.After(last):
			lastSum, lastN = lastSum+l.lag, lastN+1
			s.maxLag = max(s.maxLag, l.lag)
		case l.at.After(mid):
			midSum, midN = midSum+l.lag, midN+1
		}
	}
	s.meanLag = float64(lastSum) / float64(max(lastN, 1))
	midMean := float64(midSum) / float64(max(midN, 1))
	ended := time.Now()
	derr := p.caughtUp(ctx, groups)
	s.drain = time.Since(ended)
	var why []string
	if s.res.Unsent > 0 {
		why = append(why, fmt.Sprintf("%d requests not sent", s.res.Unsent))
	}
	if s.res.Failed > 0 {
		why = append(why, fmt.Sprintf("%d requests failed", s.res.Failed))
	}
	if s.meanLag > 2*rate {
		why = append(why, fmt.Sprintf("mean lag %.0f in the last third > 2 s of events", s.meanLag))
	}
	if s.meanLag > 1.5*midMean+rate/2 {
		why = append(why, fmt.Sprintf("lag growing: mean %.0f in the last third, %.0f in the middle one", s.meanLag, midMean))
	}
	if derr != nil || s.drain > 15*time.Second {
		why = append(why, fmt.Sprintf("drained in %.0fs after the load", s.drain.Seconds()))
	}
	if c := p.Crashes(); len(c) > 0 {
		why = append(why, c[0])
	}
	s.held = len(why) == 0
	s.why = joinNotes(why...)
	once.Do(stopProbes) // every probe has its answer
	s.lost = lost.Load()
	return s, nil
}

// waitVisible polls GET url with key until it answers 200 (recording the
// time since acked), for at most 30 s.
func waitVisible(ctx context.Context, client *http.Client, url, key string, acked time.Time, h *loadgen.Histogram) bool {
	for time.Since(acked) < 30*time.Second && ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				h.Record(time.Since(acked))
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// --- shared pieces ---

// load runs a load phase measuring the cores of groups.
func (b *Bench) load(ctx context.Context, groups map[string]cpuGroup, cfg loadgen.Config, op loadgen.Op) (loadgen.Result, Cores, error) {
	var r loadgen.Result
	c, err := measure(groups, func() error {
		var err error
		r, err = loadgen.Run(ctx, cfg, op)
		return err
	})
	return r, c, err
}

func fig(scn int, br *broker, c, kind, mode string, r loadgen.Result, latencyKind string, rat float64, cores Cores) Figure {
	lat := r.Latency
	f := Figure{Scenario: scn, Broker: br.name, Case: c, Kind: kind, Mode: mode, EventsPerSec: r.EventsPerSec(),
		ReqPerSec: r.RequestsPerSec(), Latency: &lat, LatencyKind: latencyKind, Ratio: rat, Run: &r, Cores: cores}
	var notes []string
	if r.Failed > 0 {
		notes = append(notes, fmt.Sprintf("%d of %d requests failed", r.Failed, r.Sent))
	}
	if r.Unsent > 0 {
		notes = append(notes, fmt.Sprintf("%d requests never sent (schedule not held)", r.Unsent))
	}
	if r.Mode == "open" && r.Late > r.Sent/100 {
		notes = append(notes, fmt.Sprintf("%d requests left > 1 ms late (up to %s)", r.Late, msd(r.MaxDelay)))
	}
	if r.Mode == "open" {
		notes = append(notes, fmt.Sprintf("service time p50 %s p99 %s", msd(r.Service.P50), msd(r.Service.P99)))
	}
	f.Note = joinNotes(notes...)
	return f
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func joinNotes(notes ...string) string {
	out := ""
	for _, n := range notes {
		if n == "" {
			continue
		}
		if out != "" {
			out += "; "
		}
		out += n
	}
	return out
}

func (p *pipeline) checkCrashes() error {
	if c := p.Crashes(); len(c) > 0 {
		return fmt.Errorf("service exited during the scenario: %v", c)
	}
	return nil
}

// checkpoint makes Postgres write its dirty pages now rather than during
// the measurement.
func (p *pipeline) checkpoint(ctx context.Context) error {
	db, err := pg.Open(ctx, p.b.pg.DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CHECKPOINT")
	return err
}

// preload produces n messages made by next, 5 000 per WriteMessages call
// on four goroutines, with the services' producer settings.
func (p *pipeline) preload(ctx context.Context, n int64, next func() (contract.Message, error)) error {
	w := kafkax.NewWriter(p.br.addr)
	defer w.Close()
	chunks := make(chan []kafka.Message, 4)
	errc := make(chan error, 5)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for c := range chunks {
				if err := w.WriteMessages(ctx, c...); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	var err error
	for done := int64(0); done < n && err == nil; {
		k := min(5000, n-done)
		msgs := make([]contract.Message, k)
		for i := range msgs {
			if msgs[i], err = next(); err != nil {
				break
			}
		}
		select {
		case chunks <- kafkax.ToKafka(msgs):
		case err = <-errc:
		}
		done += k
	}
	close(chunks)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

// drained is how a consumer group drained a backlog: from its start, when
// its lag first fell below the backlog (progress seen), and when it
// reached 0.
type drained struct {
	total       int64
	started     time.Time
	first, done time.Time
	lagAtFirst  int64
}

// rate is the events committed per second between the first progress
// seen and the end: what the consumer does once it runs, leaving out its
// start-up and group join (which drain.note reports).
func (d drained) rate() float64 {
	if el := d.done.Sub(d.first); el > 0 && d.lagAtFirst > 0 {
		return float64(d.lagAtFirst) / el.Seconds()
	}
	return float64(d.total) / d.done.Sub(d.started).Seconds()
}

func (d drained) note() string {
	return fmt.Sprintf("%.1fs from start to first commit, %.1fs in all", d.first.Sub(d.started).Seconds(), d.done.Sub(d.started).Seconds())
}

// drain polls group's lag on topic every 100 ms until it is 0.
func (p *pipeline) drain(ctx context.Context, group, topic string, total int64, started time.Time) (drained, error) {
	d := drained{total: total, started: started}
	// Far longer than any drain measured here takes; a consumer that makes
	// no progress at all fails the scenario.
	err := stack.Poll(ctx, 5*time.Minute, func() bool {
		l, err := p.lag(ctx, map[string]string{group: topic})
		if err != nil {
			return false
		}
		now := time.Now()
		if d.first.IsZero() && l < total {
			d.first, d.lagAtFirst = now, l
		}
		if l == 0 {
			d.done = now
			return true
		}
		return false
	})
	return d, err
}

// caughtUp waits (at most 60 s) until groups have no lag.
func (p *pipeline) caughtUp(ctx context.Context, groups map[string]string) error {
	return stack.Poll(ctx, 60*time.Second, func() bool {
		l, err := p.lag(ctx, groups)
		return err == nil && l == 0
	})
}

// rawRelay is the validator's physical limit: a kafka-go group reader
// configured as kafkax.Consumer's, batches of up to 500 collected with a
// 5 ms linger, each batch produced to another topic (same key, value and
// headers) by a writer configured as the services' producers, then
// committed. It returns after committing total messages.
func rawRelay(ctx context.Context, addr, group, from, to string, total int64) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: group, Topic: from, MinBytes: 1, MaxBytes: 16 << 20,
		MaxWait: 250 * time.Millisecond, StartOffset: kafka.FirstOffset, CommitInterval: 0,
	})
	defer r.Close()
	w := kafkax.NewWriter(addr)
	defer w.Close()
	fetched := make(chan kafka.Message, 500)
	go func() {
		defer close(fetched)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return
			}
			select {
			case fetched <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	var done int64
	for done < total {
		first, ok := <-fetched
		if !ok {
			return ctx.Err()
		}
		batch := []kafka.Message{first}
		linger := time.NewTimer(5 * time.Millisecond)
	fill:
		for len(batch) < 500 {
			select {
			case m, ok := <-fetched:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		out := make([]kafka.Message, len(batch))
		for i, m := range batch {
			out[i] = kafka.Message{Topic: to, Key: m.Key, Value: m.Value, Headers: m.Headers}
		}
		// A failed produce is retried, as kafkax.Consumer retries a failed
		// handler (kafka-go's writer already retried it MaxAttempts times).
		for attempt := 1; ; attempt++ {
			err := w.WriteMessages(ctx, out...)
			if err == nil {
				break
			}
			if attempt == 10 || ctx.Err() != nil {
				return fmt.Errorf("relay produce: %w", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := r.CommitMessages(ctx, batch...); err != nil {
			return fmt.Errorf("relay commit: %w", err)
		}
		done += int64(len(batch))
	}
	return nil
}

// rawCopy COPYs the events into dsn's (freshly migrated) events table in
// transactions of batch rows on one connection, with the same columns and
// values the writer's COPY sends, and returns how long it took.
func rawCopy(ctx context.Context, dsn string, events []contract.Event, batch int) (time.Duration, error) {
	db, err := pg.Open(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if err := pg.Migrate(ctx, db); err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return 0, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	for i := 0; i < len(events); i += batch {
		if err := copyBatch(ctx, conn, events[i:min(i+batch, len(events))]); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func copyBatch(ctx context.Context, conn *sql.Conn, events []contract.Event) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("events", "id", "app_id", "session_id", "category", "name", "data", "timestamp", "received_at", "client_timestamp"))
	if err != nil {
		return err
	}
	for _, e := range events {
		var client any
		if !e.ClientTimestamp.IsZero() {
			client = e.ClientTimestamp
		}
		if _, err := stmt.ExecContext(ctx, e.ID.String(), e.AppID.String(), e.SessionID.String(), e.Category, e.Name,
			string(e.Data), e.Timestamp, e.ReceivedAt, client); err != nil {
			return err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return err
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	return tx.Commit()
}

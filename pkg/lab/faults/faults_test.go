package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/lab/stack"
)

// Bounds the suite asserts (docs/reliability.md states them).
const (
	// recoveryBound: from the end of a fault (broker, database or process
	// back) until every event acknowledged before that moment is stored.
	// A SIGKILLed consumer's group membership lingers for kafka-go's 30 s
	// session timeout, which dominates.
	recoveryBound = 90 * time.Second
	// drainBound: from the load's stop until every acknowledged event is
	// stored and every consumer group's lag is 0.
	drainBound = 60 * time.Second
)

// config is the load every scenario runs under (EYE_FAULTS_RATE,
// EYE_FAULTS_SESSIONS, EYE_FAULTS_STEADY).
type config struct {
	rate     float64       // events/s offered, all sessions together
	sessions int           // concurrent client sessions
	steady   time.Duration // undisturbed load before the first fault and after the last recovery
}

func loadConfig(t *testing.T) config {
	c := config{rate: 800, sessions: 24, steady: 5 * time.Second}
	if v := os.Getenv("EYE_FAULTS_RATE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			t.Fatalf("EYE_FAULTS_RATE=%q", v)
		}
		c.rate = f
	}
	if v := os.Getenv("EYE_FAULTS_SESSIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			t.Fatalf("EYE_FAULTS_SESSIONS=%q", v)
		}
		c.sessions = n
	}
	if v := os.Getenv("EYE_FAULTS_STEADY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("EYE_FAULTS_STEADY=%q", v)
		}
		c.steady = d
	}
	return c
}

// result is one scenario's row of the summary.
type result struct {
	Name, Faults string
	Verdict      verdict
	Recoveries   []recovery
	Drain        time.Duration
	Rate         float64 // acknowledged events/s over the load's life
	Crashes      []string
	Notes        []string
	Errs         []string // why the scenario failed, besides the verdict
	Elapsed      time.Duration
}

type recovery struct {
	What string
	Took time.Duration
}

// Worst is the longest recovery.
func (r result) Worst() time.Duration {
	var w time.Duration
	for _, rc := range r.Recoveries {
		w = max(w, rc.Took)
	}
	return w
}

// Passed reports whether the scenario met every assertion.
func (r result) Passed() bool { return len(r.Errs) == 0 && r.Verdict.Sound() }

// scenario is a fault pattern run under load.
type scenario struct {
	name   string
	faults string // for the table
	// prepare, if set, runs before the load starts.
	prepare func(sc *scene) error
	run     func(ctx context.Context, sc *scene) error
}

// scene is a running scenario.
type scene struct {
	t   *testing.T
	s   *suite
	p   *pipeline
	l   *load
	res *result
	// stream is scenario-specific state (the NDJSON stream).
	stream *stream
}

// logf logs with the time since the suite started.
func (sc *scene) logf(format string, args ...any) {
	sc.t.Helper()
	sc.t.Logf("[%6.1fs] %s: %s", time.Since(sc.s.start).Seconds(), sc.res.Name, fmt.Sprintf(format, args...))
}

// note adds a line to the scenario's notes in the report.
func (sc *scene) note(format string, args ...any) {
	sc.res.Notes = append(sc.res.Notes, fmt.Sprintf(format, args...))
}

// recover is called right after a fault ended: it waits until every event
// acknowledged up to now is stored and records how long that took.
func (sc *scene) recover(ctx context.Context, what string) error {
	marks, since := sc.l.Marks(), time.Now()
	took, err := sc.p.WaitStored(ctx, sc.l, marks, since, recoveryBound)
	sc.res.Recoveries = append(sc.res.Recoveries, recovery{what, took})
	if err != nil {
		return fmt.Errorf("no recovery within %s after %s: %w", recoveryBound, what, err)
	}
	sc.logf("recovered from %s in %.1fs", what, took.Seconds())
	return nil
}

// wait lets the load run undisturbed for d.
func wait(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// suite is the shared infrastructure and the results.
type suite struct {
	cfg     config
	work    string
	brk     *broker
	pg      *pgCluster
	start   time.Time
	results []result
}

// TestFaults runs every scenario under load against real Apache Kafka and
// Postgres and writes the summary into docs/reliability.md when all ran.
func TestFaults(t *testing.T) {
	if !enabled() {
		t.Skip("fault-injection suite: run with EYE_FAULTS=1 (make test-faults)")
	}
	s := &suite{cfg: loadConfig(t), start: time.Now()}
	work, err := os.MkdirTemp("", "eye-faults-")
	if err != nil {
		t.Fatal(err)
	}
	// Postgres runs as an unprivileged user when the suite runs as root.
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	s.work = work
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("EYE_FAULTS_KEEP") == "1" {
			t.Logf("kept %s (logs of every process, broker and database)", work)
			return
		}
		os.RemoveAll(work)
	})
	t.Logf("work dir %s; load %.0f events/s from %d sessions", work, s.cfg.rate, s.cfg.sessions)

	ctx := context.Background()
	if s.brk, err = newBroker(filepath.Join(work, "kafka")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.brk.Stop(context.Background()); err != nil {
			t.Errorf("stop broker: %v", err)
		}
	})
	if err := s.brk.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Apache Kafka on %s (%.0fs)", s.brk.Addr(), time.Since(s.start).Seconds())
	s.pg = &pgCluster{Dir: filepath.Join(work, "pg"), Durable: true}
	if err := s.pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.pg.Stop(); err != nil {
			t.Errorf("stop postgres: %v", err)
		}
	})
	t.Logf("Postgres on port %d", s.pg.Port())

	all := scenarios()
	for _, sc := range all {
		t.Run(sc.name, func(t *testing.T) { s.run(t, sc) })
	}
	elapsed := time.Since(s.start)
	report := s.report(elapsed)
	fmt.Println(report.table)
	if len(s.results) == len(all) {
		if err := writeDoc(report.doc); err != nil {
			t.Errorf("write docs/reliability.md: %v", err)
		}
	} else {
		t.Logf("only %d of %d scenarios ran: docs/reliability.md left as it is", len(s.results), len(all))
	}
}

// run runs one scenario and records its result.
func (s *suite) run(t *testing.T, sc scenario) {
	started := time.Now()
	res := &result{Name: sc.name, Faults: sc.faults}
	defer func() {
		res.Elapsed = time.Since(started)
		s.results = append(s.results, *res)
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		res.Errs = append(res.Errs, msg)
		t.Error(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	dir := filepath.Join(s.work, sc.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := newPipeline(ctx, sc.name, dir, s.brk, s.pg)
	if err != nil {
		fail("start pipeline: %v", err)
		return
	}
	closed := false
	closePipeline := func() {
		if closed {
			return
		}
		closed = true
		res.Crashes = p.Crashes()
		for _, err := range p.Close() {
			fail("%v", err)
		}
	}
	defer closePipeline()
	defer func() {
		if t.Failed() {
			t.Logf("process logs:\n%s", p.LogTails(2500))
		}
	}()

	pgLog := s.pg.LogSize()
	l := newLoad(p.URL(harness.Gateway), s.cfg.sessions, s.cfg.rate)
	scn := &scene{t: t, s: s, p: p, l: l, res: res}
	if sc.prepare != nil {
		if err := sc.prepare(scn); err != nil {
			fail("prepare: %v", err)
			return
		}
	}
	loadStart := time.Now()
	l.Start()
	defer l.Stop(0)
	scn.logf("load started")
	if err := wait(ctx, s.cfg.steady); err != nil {
		fail("%v", err)
		return
	}
	if _, err := p.WaitStored(ctx, l, l.Marks(), time.Now(), 30*time.Second); err != nil {
		fail("the pipeline does not store events before any fault: %v", err)
		return
	}
	if err := sc.run(ctx, scn); err != nil {
		fail("%v", err)
		// The checks below still tell what became of the events.
	}
	if err := wait(ctx, s.cfg.steady); err != nil {
		fail("%v", err)
	}

	stopped := time.Now()
	l.Stop(90 * time.Second)
	loadTime := time.Since(loadStart)
	scn.logf("load stopped: %s", l.Summary())
	marks := l.Marks()
	err = stack.Poll(ctx, drainBound, func() bool {
		var want int64
		for _, m := range marks {
			want += m
		}
		n, err := p.StoredUpTo(ctx, l, marks)
		return err == nil && n == want && p.LagZero(ctx) && p.MetricLagZero(ctx)
	})
	res.Drain = time.Since(stopped)
	if err != nil {
		fail("not drained (all acknowledged events stored, consumer lag 0 at the broker and in eye_consumer_lag) within %s of the load's stop", drainBound)
	} else {
		scn.logf("drained in %.1fs", res.Drain.Seconds())
	}
	res.Rate = float64(l.Acked()) / loadTime.Seconds()
	for _, f := range l.Failures() {
		fail("client: %s", f)
	}
	v, err := p.Verify(ctx, l)
	res.Verdict = v
	if err != nil {
		fail("verify: %v", err)
	}
	closePipeline()
	res.Notes = append(res.Notes, "clients: "+l.Summary())
	if republished := v.ValidRecords - v.RawRecords; v.RawCopies > 0 || republished > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("extra records on the topics, each event stored once all the same: %d on raw (a client retried a write that had landed), %d more on valid-events than on raw (a validator re-published a batch whose offsets were not committed, after a kill or a rebalance)", v.RawCopies, republished))
	}
	// What a writer killed mid-batch leaves in the Postgres log.
	logged := s.pg.LogSince(pgLog)
	redelivered := strings.Count(logged, `duplicate key value violates unique constraint "events_pkey"`)
	cut := strings.Count(logged, "unexpected EOF on client connection with an open transaction")
	if redelivered+cut > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("Postgres log: %d writer batches met an event already stored (a batch redelivered after a kill or a rebalance, or a second copy of an event) and went in again with INSERT … ON CONFLICT DO NOTHING; %d writer connections lost inside a transaction (a writer killed mid-batch)", redelivered, cut))
	}
	if v.Unacked > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d events sent but never acknowledged (given up at the end), %d of them stored", v.Unacked, v.UnackedStored))
	}
	scn.logf("acknowledged %d, lost %d, duplicated %d, out of order %d (raw %d, valid %d, received_at %d), worst recovery %.1fs",
		v.Acked, v.Lost, v.Duplicated, v.OutOfOrder(), v.RawOutOfOrder, v.ValidOutOfOrder, v.ReceivedOutOfOrder, res.Worst().Seconds())
	if !v.Sound() {
		fail("acknowledged events not stored exactly once and in order: %+v\n%s", v, strings.Join(v.Problems, "\n"))
	}
	for _, c := range res.Crashes {
		t.Logf("crash: %s", c)
	}
}

// scenarios are the fault patterns, in the order they run.
func scenarios() []scenario {
	return []scenario{
		{
			name:   "kafka-sigkill",
			faults: "broker SIGKILLed, down 5 s, restarted; 3 times",
			run:    kafkaKills,
		},
		{
			name:   "postgres-restart",
			faults: "Postgres restarted: fast stop + start, then immediate-mode crash + start (WAL replay)",
			run:    postgresRestarts,
		},
		{
			name:   "postgres-unreachable",
			faults: "Postgres frozen (SIGSTOP) 60 s: connections hang",
			run:    postgresFreeze,
		},
		{
			name:   "consumers-sigkill",
			faults: "writer SIGKILLed 2×, validator 2×, both at once; the 2nd kill of each mid-batch while it drains the backlog",
			run:    consumerKills,
		},
		{
			name:   "consumer-churn",
			faults: "validators and writers added/removed (SIGTERM) every 4 s for 60 s, 1–3 of each",
			run:    consumerChurn,
		},
		{
			name:    "gateway-ndjson",
			faults:  "gateway SIGKILLed mid NDJSON stream (20 000 lines), restarted; client resends the whole stream",
			prepare: prepareStream,
			run:     gatewayKilledMidStream,
		},
	}
}

// kafkaKills: SIGKILL the broker, keep it down 5 s, start it again on the
// same data; three times.
func kafkaKills(ctx context.Context, sc *scene) error {
	defer sc.s.brk.Start(context.Background()) // whatever happens, the next scenario needs it
	for round := 1; round <= 3; round++ {
		if round > 1 {
			if err := wait(ctx, sc.s.cfg.steady); err != nil {
				return err
			}
		}
		sc.logf("round %d: SIGKILL broker (acknowledged so far %d)", round, sc.l.Acked())
		if err := sc.s.brk.Kill(ctx); err != nil {
			return err
		}
		if err := wait(ctx, 5*time.Second); err != nil {
			return err
		}
		restart := time.Now()
		if err := sc.s.brk.Start(ctx); err != nil {
			return err
		}
		sc.logf("broker back after %.1fs of start-up", time.Since(restart).Seconds())
		if err := sc.recover(ctx, fmt.Sprintf("broker restart %d", round)); err != nil {
			return err
		}
	}
	return nil
}

// postgresRestarts: a fast (clean) restart, then a crash (immediate mode)
// and start.
func postgresRestarts(ctx context.Context, sc *scene) error {
	defer sc.s.pg.Start(context.Background())
	sc.logf("Postgres: fast stop")
	if err := sc.s.pg.Stop(); err != nil {
		return err
	}
	if err := sc.s.pg.Start(ctx); err != nil {
		return err
	}
	if err := sc.recover(ctx, "fast restart"); err != nil {
		return err
	}
	if err := wait(ctx, sc.s.cfg.steady); err != nil {
		return err
	}
	sc.logf("Postgres: immediate shutdown (crash)")
	if err := sc.s.pg.Crash(ctx); err != nil {
		return err
	}
	if err := sc.s.pg.Start(ctx); err != nil {
		return err
	}
	return sc.recover(ctx, "crash restart")
}

// postgresFreeze: every Postgres process stopped for 60 s.
func postgresFreeze(ctx context.Context, sc *scene) error {
	sc.logf("Postgres: SIGSTOP for 60 s")
	pids, err := sc.s.pg.Freeze()
	defer sc.s.pg.Thaw(pids)
	if err != nil {
		return err
	}
	if err := wait(ctx, 60*time.Second); err != nil {
		return err
	}
	sc.s.pg.Thaw(pids)
	sc.logf("Postgres: SIGCONT")
	return sc.recover(ctx, "60 s freeze")
}

// consumerKills: SIGKILL the writer under steady load and start it again;
// once the new process drains the backlog, SIGKILL it again in the middle
// of a batch (see killMidBatch). The same for the validator, then both at
// once.
func consumerKills(ctx context.Context, sc *scene) error {
	p := sc.p
	// A writer is mid-batch while its batch's transaction is open: the
	// batch is rolled back and redelivered. Only the writer writes to the
	// scenario's database, so an open transaction that wrote is its.
	writerInTx := func() bool {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var n int
		err := p.db.GetContext(ctx, &n, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL`)
		return err == nil && n > 0
	}
	writer := func() *instance { return p.Instance(harness.Writer) }
	if err := sc.killMidBatch(ctx, writer, p.prefix+"writer.events", "with its batch's transaction open",
		func(context.Context) (func() bool, func() string, error) {
			return writerInTx, func() string { return "the open transaction rolled back" }, nil
		}); err != nil {
		return err
	}
	if err := wait(ctx, sc.s.cfg.steady); err != nil {
		return err
	}
	// A validator is mid-batch once it has published (part of) a batch and
	// not committed its raw offsets: the valid-events topic then holds more
	// records beyond the committed raw offsets than between batches (every
	// raw record becomes one valid record, so the difference is otherwise
	// constant). The constant is taken while the validator is dead.
	client := &kafka.Client{Addr: kafka.TCP(p.brk.Addr()), Timeout: 5 * time.Second}
	validator := func() *instance { return p.Instance(harness.Validator) }
	if err := sc.killMidBatch(ctx, validator, p.prefix+"validator", "between publishing a batch and committing its offsets",
		func(ctx context.Context) (func() bool, func() string, error) {
			base, err := p.publishedBeyondCommitted(ctx, client)
			if err != nil {
				return nil, nil, err
			}
			caught := func() bool {
				d, err := p.publishedBeyondCommitted(ctx, client)
				return err == nil && d > base
			}
			describe := func() string {
				d, _ := p.publishedBeyondCommitted(ctx, client)
				return fmt.Sprintf("records on valid-events whose raw offsets were not committed: %d", d-base)
			}
			return caught, describe, nil
		}); err != nil {
		return err
	}
	if err := wait(ctx, sc.s.cfg.steady); err != nil {
		return err
	}
	sc.logf("SIGKILL writer and validator at once")
	w, v := p.Instance(harness.Writer), p.Instance(harness.Validator)
	w.Kill()
	v.Kill()
	if err := w.Start(); err != nil {
		return err
	}
	if err := v.Start(); err != nil {
		return err
	}
	return sc.recover(ctx, "writer and validator killed together")
}

// killMidBatch SIGKILLs inst() under steady load and starts it again. Once
// the new process has handled its first batch (the group has rebalanced
// and it drains the backlog the first kill left), it catches it mid-batch:
// arm, called while the process is dead, returns caught (does the process
// have a batch half done right now?) and describe (what it left behind).
// caught is polled as fast as it answers; when it holds, the process is
// frozen with SIGSTOP and caught is asked again: if it still holds the
// process is SIGKILLed where it stands, else it is resumed with SIGCONT
// and polling goes on (after 30 s it is killed anyway).
func (sc *scene) killMidBatch(ctx context.Context, inst func() *instance, group, moment string,
	arm func(context.Context) (caught func() bool, describe func() string, err error)) error {
	i := inst()
	sc.logf("SIGKILL %s under steady load (its group's lag %s)", i.Name, sc.lagOf(ctx, group))
	i.Kill()
	caught, describe, err := arm(ctx)
	if err != nil {
		return err
	}
	if err := i.Start(); err != nil {
		return err
	}
	topic := sc.p.groups()[group]
	if err := stack.Poll(ctx, recoveryBound, func() bool {
		return metricSum(ctx, i, "eye_consumer_messages_total", `topic="`+topic+`"`) > 0
	}); err != nil {
		return fmt.Errorf("restarted %s handled nothing: %w", i.Name, err)
	}
	lag := sc.lagOf(ctx, group)
	hit, tries := false, 0
	for deadline := time.Now().Add(30 * time.Second); !hit && time.Now().Before(deadline) && ctx.Err() == nil; {
		if !caught() {
			continue
		}
		tries++
		i.Signal(syscall.SIGSTOP)
		if hit = caught(); !hit {
			i.Signal(syscall.SIGCONT)
		}
	}
	i.Kill()
	what := fmt.Sprintf("not caught mid-batch within 30 s (%d tries), killed anyway", tries)
	if hit {
		what = "killed " + moment + ": " + describe()
	}
	sc.logf("SIGKILL %s again while draining a backlog of %s messages: %s", i.Name, lag, what)
	sc.note("%s, while draining a backlog of %s messages, %s", i.Name, lag, what)
	if err := i.Start(); err != nil {
		return err
	}
	return sc.recover(ctx, i.Service+" killed twice")
}

// publishedBeyondCommitted is the number of records on the valid-events
// topic minus the raw offsets the validator group committed, over all
// partitions (EYE_TOPIC_PARTITIONS=6).
func (p *pipeline) publishedBeyondCommitted(ctx context.Context, client *kafka.Client) (int64, error) {
	parts := []int{0, 1, 2, 3, 4, 5}
	var ends []kafka.OffsetRequest
	for _, part := range parts {
		ends = append(ends, kafka.LastOffsetOf(part))
	}
	end, err := stack.ListOffsets(ctx, client, p.topics.Events, ends, func(o kafka.PartitionOffsets) int64 { return o.LastOffset })
	if err != nil {
		return 0, err
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: p.prefix + "validator", Topics: map[string][]int{p.topics.Raw: parts}})
	if err == nil && committed.Error != nil {
		err = committed.Error
	}
	if err != nil {
		return 0, err
	}
	var d int64
	for _, e := range end {
		d += e
	}
	for _, c := range committed.Topics[p.topics.Raw] {
		d -= max(0, c.CommittedOffset)
	}
	return d, nil
}

// lagOf is a group's lag as text, for the log.
func (sc *scene) lagOf(ctx context.Context, group string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lag, err := sc.p.Lag(ctx)
	if err != nil {
		return "unknown"
	}
	return strconv.FormatInt(lag[group], 10)
}

// consumerChurn: every 4 s for 60 s, add or remove (SIGTERM) a validator or
// a writer, keeping 1 to 3 of each. The choices come from a logged seed.
func consumerChurn(ctx context.Context, sc *scene) error {
	p := sc.p
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	sc.logf("churn seed %d", seed)
	tick := time.NewTicker(4 * time.Second)
	defer tick.Stop()
	end := time.Now().Add(60 * time.Second)
	changes := 0
	var maxLag int64
	for time.Now().Before(end) {
		if lag, err := p.Lag(ctx); err == nil {
			for _, n := range lag {
				maxLag = max(maxLag, n)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		service := harness.Writer
		if rng.IntN(2) == 0 {
			service = harness.Validator
		}
		running := p.Instances(service)
		n := len(running)
		grow := n == 1 || (n < 3 && rng.IntN(2) == 0)
		if grow {
			i, err := p.Add(ctx, service)
			if err != nil {
				return err
			}
			sc.logf("churn: + %s (%d running)", i.Name, n+1)
		} else {
			i := running[rng.IntN(n)]
			if err := p.Remove(i); err != nil {
				return err
			}
			sc.logf("churn: - %s (%d running)", i.Name, n-1)
		}
		changes++
	}
	sc.note("%d membership changes (seed %d); the largest consumer lag seen at a change was %d messages", changes, seed, maxLag)
	return sc.recover(ctx, "end of churn")
}

// streamSessions × streamPerSession lines make the NDJSON stream.
const (
	streamSessions   = 10
	streamPerSession = 2000
	streamPace       = 4000 // lines/s while the gateway gets killed
)

func prepareStream(sc *scene) error {
	st, err := sc.l.AddStream(streamSessions, streamPerSession)
	sc.stream = st
	return err
}

// gatewayKilledMidStream: a slow NDJSON stream is cut by SIGKILL of the
// gateway once part of it is stored; the client gets no answer, resends
// the whole stream with the same ids after the restart, and every line is
// stored once.
func gatewayKilledMidStream(ctx context.Context, sc *scene) error {
	p, l, st := sc.p, sc.l, sc.stream
	total := int64(len(st.lines))
	streamIdx := len(l.sessions) - streamSessions
	streamMarks := func(upto int64) []int64 {
		marks := make([]int64, len(l.sessions))
		for k := streamIdx; k < len(marks); k++ {
			marks[k] = upto
		}
		return marks
	}
	storedOfStream := func() int64 {
		n, _ := p.StoredUpTo(ctx, l, streamMarks(streamPerSession))
		return n
	}

	type answer struct {
		status int
		body   []byte
		err    error
	}
	first := make(chan answer, 1)
	go func() {
		status, body, err := l.SendStream(ctx, st, streamPace)
		first <- answer{status, body, err}
	}()
	sc.logf("NDJSON stream of %d lines at %d lines/s", total, streamPace)
	// Kill once a fifth of the stream is stored: the gateway has published
	// (acknowledged to Kafka) at least that much.
	if err := stack.Poll(ctx, 60*time.Second, func() bool { return storedOfStream() >= total/5 }); err != nil {
		<-first
		return fmt.Errorf("the stream does not get stored: %w", err)
	}
	sc.logf("SIGKILL gateway (%d stream events stored)", storedOfStream())
	p.Instance(harness.Gateway).Kill()
	a := <-first
	if a.err == nil {
		return fmt.Errorf("the stream ended with %d %s before the gateway was killed: slow it down", a.status, a.body)
	}
	sc.logf("stream cut: %v", a.err)
	// With the gateway gone nothing new reaches the raw topic: once every
	// group has committed everything, what the killed stream delivered is
	// stored.
	if err := stack.Poll(ctx, recoveryBound, func() bool { return p.LagZero(ctx) }); err != nil {
		return fmt.Errorf("consumers do not catch up while the gateway is down: %w", err)
	}
	landed := storedOfStream()
	sc.note("the killed stream had delivered %d of %d lines (answer: none, the connection broke)", landed, total)
	sc.logf("the killed stream delivered %d of %d lines", landed, total)

	if err := p.Instance(harness.Gateway).Start(); err != nil {
		return err
	}
	if err := p.Instance(harness.Gateway).WaitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	if err := sc.recover(ctx, "gateway restart"); err != nil {
		return err
	}
	resent := time.Now()
	status, body, err := l.SendStream(ctx, st, 0)
	if err != nil {
		return fmt.Errorf("resend: %w", err)
	}
	var res struct {
		Accepted, Rejected int
	}
	if status != http.StatusAccepted || json.Unmarshal(body, &res) != nil || int64(res.Accepted) != total || res.Rejected != 0 {
		return fmt.Errorf("resend: %d %s, want 202 with %d accepted", status, body, total)
	}
	st.Acked()
	took, err := p.WaitStored(ctx, l, streamMarks(streamPerSession), resent, recoveryBound)
	if err != nil {
		return fmt.Errorf("resent stream: %w", err)
	}
	sc.note("the resent stream: 202 accepted %d, all stored %.1fs after the resend began", res.Accepted, took.Seconds())
	return nil
}

package postgres

// Writer throughput benchmarks (issue 5, "Writer throughput";
// docs/benchmarks-writer.md has the method, the figures and the choice).
// Every case loads the same generated backlog (EYE_BENCH_EVENTS events,
// default 100 000) into empty events and sessions tables; in the same
// iteration, seconds before, the backlog is loaded with a raw COPY on one
// connection and on two, so each figure comes with its ratio to the
// physical limit measured on the same schema under the same machine load:
//
//	EYE_POSTGRES_DSN=... go test -run '^$' -bench Writer -benchtime 1x -count 3 ./internal/store
//
// Use -benchtime 1x: one iteration is one whole backlog, and the metrics
// are computed per iteration, not from ns/op: events/s (the case),
// copy_events/s and copy2_events/s (raw COPY on one and two connections),
// x_copy and x_copy2 (the case's throughput over theirs), pg_cpu_us/event
// and go_cpu_us/event (CPU time of the Postgres cluster, when it runs on
// this machine, and of this process), load1 (the machine's load average:
// the reference machine is shared). EYE_BENCH_CASES=sub1,sub2 runs only
// the cases whose name contains one of the substrings.

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
	"github.com/the-eye/eye/services/writer/internal/persist"
)

// benchEvents is the size of the backlog (EYE_BENCH_EVENTS, default 100 000).
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("EYE_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// backlog is a generated stream of realistic events, in the order a writer
// would consume them, plus the same events split into two partition
// streams (events are keyed by session, so a session lives on one
// partition) for the parallel strategies.
type backlog struct {
	all   []event.Event
	parts [2][]event.Event
	apps  []uuid.UUID
}

var (
	backlogOnce sync.Once
	theBacklog  backlog
)

func getBacklog() backlog {
	backlogOnce.Do(func() { theBacklog = genBacklog(benchEvents(), 1) })
	return theBacklog
}

// genBacklog makes n events: 20 applications of skewed traffic, sessions of
// 10-80 events (45 on average) with 400 of them active at once and
// interleaved, skewed categories, data objects of about 300 bytes, UUIDv7
// ids (as the gateway assigns), client timestamps on one event in ten.
func genBacklog(n int, seed uint64) backlog {
	r := rand.New(rand.NewPCG(seed, seed*7919))
	var bl backlog
	for range 20 {
		bl.apps = append(bl.apps, uuid.New())
	}
	type cat struct {
		name   string
		weight int
		names  []string
	}
	cats := []cat{
		{"page interaction", 40, []string{"pageview", "scroll", "click", "hover"}},
		{"form interaction", 18, []string{"submit", "focus", "input", "validation error"}},
		{"navigation", 12, []string{"route change", "back", "external link"}},
		{"media", 8, []string{"play", "pause", "seek", "complete"}},
		{"commerce", 7, []string{"add to cart", "remove from cart", "checkout", "purchase"}},
		{"search", 5, []string{"query", "filter", "result click"}},
		{"auth", 3, []string{"login", "logout", "signup"}},
		{"error", 3, []string{"js error", "http error"}},
		{"performance", 2, []string{"web vitals", "long task"}},
		{"experiment", 1, []string{"exposure"}},
		{"notification", 1, []string{"shown", "dismissed"}},
	}
	totalWeight := 0
	for _, c := range cats {
		totalWeight += c.weight
	}
	pickCat := func() (string, string) {
		w := r.IntN(totalWeight)
		for _, c := range cats {
			if w < c.weight {
				return c.name, c.names[r.IntN(len(c.names))]
			}
			w -= c.weight
		}
		panic("unreachable")
	}
	hosts := []string{"www.example-shop.com", "app.example.io", "docs.example.org", "m.example-news.net"}
	agents := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148",
		"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
	}
	type session struct {
		id, app uuid.UUID
		left    int
		host    string
		agent   string
		t       time.Time
	}
	clock := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	newSession := func() *session {
		app := bl.apps[min(r.IntN(len(bl.apps)), r.IntN(len(bl.apps)))] // skewed towards the first apps
		return &session{id: uuid.New(), app: app, left: 10 + r.IntN(71), host: hosts[r.IntN(len(hosts))], agent: agents[r.IntN(len(agents))], t: clock}
	}
	active := make([]*session, 400)
	for i := range active {
		active[i] = newSession()
	}
	bl.all = make([]event.Event, 0, n)
	var b strings.Builder
	for len(bl.all) < n {
		clock = clock.Add(time.Duration(200+r.IntN(600)) * time.Microsecond)
		i := r.IntN(len(active))
		s := active[i]
		s.t = s.t.Add(time.Duration(r.IntN(20_000)) * time.Millisecond)
		if s.t.After(clock) {
			s.t = clock
		}
		category, name := pickCat()
		b.Reset()
		fmt.Fprintf(&b, `{"host":%q,"path":"/c/%d/item-%d","referrer":"https://www.google.com/search?q=item+%d","element":{"id":"el-%d","class":"btn btn-primary cta","text":"Add to cart"},"viewport":{"w":%d,"h":%d},"ua":%q,"locale":"en-GB","value":%d.%02d}`,
			s.host, r.IntN(50), r.IntN(100_000), r.IntN(1000), r.IntN(500), 360+r.IntN(2000), 640+r.IntN(800), s.agent, r.IntN(500), r.IntN(100))
		id, err := uuid.NewV7()
		if err != nil {
			panic(err)
		}
		e := event.Event{
			ID: id, AppID: s.app, SessionID: s.id, Category: category, Name: name,
			Data: []byte(b.String()), Timestamp: event.Canonical(s.t), ReceivedAt: event.Canonical(clock),
		}
		if r.IntN(10) == 0 {
			e.ClientTimestamp = event.Canonical(s.t.Add(-time.Duration(r.IntN(3600)) * time.Second))
		}
		bl.all = append(bl.all, e)
		p := int(s.id[15] & 1)
		bl.parts[p] = append(bl.parts[p], e)
		if s.left--; s.left == 0 {
			active[i] = newSession()
		}
	}
	return bl
}

// batches cuts events into batches of size.
func batches(events []event.Event, size int) [][]event.Event {
	var out [][]event.Event
	for len(events) > 0 {
		k := min(size, len(events))
		out = append(out, events[:k:k])
		events = events[k:]
	}
	return out
}

// benchDB is a fresh migrated database with the backlog's applications.
type benchDB struct {
	db *sqlx.DB
	st *Store
}

func newBenchDB(b *testing.B) benchDB {
	b.Helper()
	ctx := context.Background()
	db, err := pg.Open(ctx, testkit.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	for i, app := range getBacklog().apps {
		db.MustExec(`INSERT INTO applications (id, name) VALUES ($1, $2)`, app, "bench "+strconv.Itoa(i))
	}
	st, err := New(db)
	if err != nil {
		b.Fatal(err)
	}
	return benchDB{db: db, st: st}
}

// reset empties events and sessions and checkpoints, so every load starts
// from the same state and no checkpoint of an earlier load runs during it.
func (d benchDB) reset(b *testing.B) {
	b.Helper()
	d.db.MustExec(`TRUNCATE events, sessions`)
	d.db.MustExec(`CHECKPOINT`)
}

// verify checks the load stored every event once and counted it once.
func (d benchDB) verify(b *testing.B, want int) {
	b.Helper()
	var rows, counted int
	if err := d.db.Get(&rows, `SELECT count(*) FROM events`); err != nil {
		b.Fatal(err)
	}
	if err := d.db.Get(&counted, `SELECT coalesce(sum(event_count), 0) FROM sessions`); err != nil {
		b.Fatal(err)
	}
	if rows != want || counted != want {
		b.Fatalf("stored %d events, sessions count %d, want %d", rows, counted, want)
	}
}

// writeFunc stores one batch of events.
type writeFunc func(ctx context.Context, d benchDB, batch []event.Event) error

// load writes streams (one goroutine each) in batches of size with w and
// returns how long it took.
func load(ctx context.Context, d benchDB, streams [][]event.Event, size int, w writeFunc) (time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(streams))
	for _, s := range streams {
		wg.Go(func() {
			for _, batch := range batches(s, size) {
				if err := w(ctx, d, batch); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return time.Since(start), <-errs
}

// rawCopy is the physical limit: COPY of the rows into events, nothing
// else (no conflict handling, no sessions), one transaction per batch.
func rawCopy(ctx context.Context, d benchDB, batch []event.Event) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := copyRows(ctx, tx, batch); err != nil { // the store's own COPY
		return err
	}
	return tx.Commit()
}

// sinkPath runs the store calls the events handler makes per batch around
// insert: Sessions and StrictSessions (the backlog has no session their
// verdicts refuse), the insert, MarkReplayed, InsertErrors (the last two
// have nothing to do for a backlog without replays or errors). The whole
// handler, decoding included, is the kafkaapi.Events case
// (handler_bench_test.go).
func sinkPath(insert writeFunc) writeFunc {
	return func(ctx context.Context, d benchDB, batch []event.Event) error {
		sessionIDs, appIDs := make([]uuid.UUID, 0, len(batch)/4), []uuid.UUID{}
		seen := map[uuid.UUID]bool{}
		for _, e := range batch {
			if !seen[e.SessionID] {
				seen[e.SessionID] = true
				sessionIDs = append(sessionIDs, e.SessionID)
			}
			if !seen[e.AppID] {
				seen[e.AppID] = true
				appIDs = append(appIDs, e.AppID)
			}
		}
		if _, err := d.st.Sessions(ctx, sessionIDs); err != nil {
			return err
		}
		if _, err := d.st.StrictSessions(ctx, appIDs); err != nil {
			return err
		}
		if err := insert(ctx, d, batch); err != nil {
			return err
		}
		if err := d.st.MarkReplayed(ctx, nil); err != nil {
			return err
		}
		return d.st.InsertErrors(ctx, nil)
	}
}

// withRejects adapts InsertEvents-like methods to writeFunc.
func withRejects(f func(*Store, context.Context, []event.Event) ([]persist.Rejected, error)) writeFunc {
	return func(ctx context.Context, d benchDB, batch []event.Event) error {
		rej, err := f(d.st, ctx, batch)
		if err == nil && len(rej) > 0 {
			err = fmt.Errorf("%d rejected: %v", len(rej), rej[0].Err)
		}
		return err
	}
}

// stagingInsert: COPY into a temporary table, then INSERT … SELECT … ON
// CONFLICT DO NOTHING RETURNING folded into sessions, in one transaction.
func stagingInsert(ctx context.Context, d benchDB, batch []event.Event) error {
	const create = `CREATE TEMP TABLE IF NOT EXISTS events_in (
		id uuid, app_id uuid, session_id uuid, category text, name text, data jsonb,
		"timestamp" timestamptz, received_at timestamptz, client_timestamp timestamptz
	) ON COMMIT DELETE ROWS`
	const move = `
WITH inserted AS (
	INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at, client_timestamp)
	SELECT id, app_id, session_id, category, name, data, "timestamp", received_at, client_timestamp FROM events_in ORDER BY id
	ON CONFLICT (id) DO NOTHING
	RETURNING app_id, session_id, "timestamp", received_at
)
INSERT INTO sessions AS s (id, app_id, created_at, first_event_at, last_event_at, event_count)
SELECT session_id, (array_agg(app_id))[1], min(received_at), min("timestamp"), max("timestamp"), count(*)
FROM inserted GROUP BY session_id ORDER BY session_id
ON CONFLICT (id) DO UPDATE SET
	first_event_at = LEAST(s.first_event_at, EXCLUDED.first_event_at),
	last_event_at  = GREATEST(s.last_event_at, EXCLUDED.last_event_at),
	event_count    = s.event_count + EXCLUDED.event_count
WHERE s.app_id = EXCLUDED.app_id`
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return err
	}
	if err := copyInto(ctx, tx, "events_in", batch); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, move); err != nil {
		return err
	}
	return tx.Commit()
}

// copyInto is COPY of events into table through database/sql, one Exec
// per row (lib/pq's COPY support).
func copyInto(ctx context.Context, tx *sql.Tx, table string, events []event.Event) error {
	stmt, err := tx.PrepareContext(ctx, `COPY `+table+` (id, app_id, session_id, category, name, data, "timestamp", received_at, client_timestamp) FROM STDIN`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, e := range events {
		var client any
		if !e.ClientTimestamp.IsZero() {
			client = e.ClientTimestamp
		}
		if _, err := stmt.ExecContext(ctx, e.ID.String(), e.AppID.String(), e.SessionID.String(), e.Category, e.Name, string(e.Data), e.Timestamp, e.ReceivedAt, client); err != nil {
			return err
		}
	}
	_, err = stmt.ExecContext(ctx)
	return err
}

// unnestInsertEvents is InsertEvents as it was before COPY: the whole
// batch in one unnest statement, row by row when Postgres refuses a value.
func (s *Store) unnestInsertEvents(ctx context.Context, events []event.Event) ([]persist.Rejected, error) {
	err := s.insertOnConflict(ctx, events)
	if err == nil || !pg.IsDataError(err) {
		return nil, err
	}
	var rejected []persist.Rejected
	for _, e := range events {
		err := s.insertOnConflict(ctx, []event.Event{e})
		switch {
		case err == nil:
		case pg.IsDataError(err):
			rejected = append(rejected, persist.Rejected{Event: e, Err: err})
		default:
			return nil, err
		}
	}
	return rejected, nil
}

// benchCase is one strategy at one batch size and parallelism.
type benchCase struct {
	name     string
	size     int
	parallel int // 1: one stream; 2: the two partition streams at once (two writers)
	w        writeFunc
	prepare  func() // run once before timing, if set
}

// lanes runs InsertEvents on a Store with n lanes (New is free: no I/O).
func lanes(n int) writeFunc {
	return func(ctx context.Context, d benchDB, batch []event.Event) error {
		st, err := New(d.db, Lanes(n))
		if err != nil {
			return err
		}
		return withRejects((*Store).InsertEvents)(ctx, benchDB{db: d.db, st: st}, batch)
	}
}

// extraCases are added by the external test package (handler_bench_test.go),
// which can import the handlers without an import cycle.
var extraCases []benchCase

// AddBenchCase adds a case to BenchmarkWriter: w stores one batch of size
// events on db; parallel 2 runs two streams (two writers) at once; prepare,
// if not nil, runs once before the case is timed.
func AddBenchCase(name string, size, parallel int, prepare func(), w func(ctx context.Context, db *sqlx.DB, batch []event.Event) error) {
	extraCases = append(extraCases, benchCase{name: name, size: size, parallel: parallel, prepare: prepare,
		w: func(ctx context.Context, d benchDB, batch []event.Event) error { return w(ctx, d.db, batch) }})
}

// BenchBacklog returns the generated backlog's events, in consumption
// order.
func BenchBacklog() []event.Event { return getBacklog().all }

// bc is a benchCase without preparation.
func bc(name string, size, parallel int, w writeFunc) benchCase {
	return benchCase{name: name, size: size, parallel: parallel, w: w}
}

// benchCases lists the strategies; EYE_BENCH_CASES (comma-separated
// substrings) keeps those whose name contains one of them.
func benchCases() []benchCase {
	unnest := withRejects((*Store).unnestInsertEvents)
	cases := []benchCase{
		bc("copy/b1000", 1000, 1, rawCopy),
		bc("copy/b5000", 5000, 1, rawCopy),
		bc("copy/one", 1<<30, 1, rawCopy),
		bc("copy_x2/b1000", 1000, 2, rawCopy),
		bc("copy_x2/b5000", 5000, 2, rawCopy),
		bc("unnest/insert/b1000", 1000, 1, unnest),
		bc("unnest/sink/b1000", 1000, 1, sinkPath(unnest)),
		bc("unnest/sink/b5000", 5000, 1, sinkPath(unnest)),
		bc("unnest_x2/sink/b1000", 1000, 2, sinkPath(unnest)),
		bc("staging/insert/b1000", 1000, 1, stagingInsert),
		bc("staging/sink/b1000", 1000, 1, sinkPath(stagingInsert)),
		bc("staging/sink/b5000", 5000, 1, sinkPath(stagingInsert)),
		bc("copyfold/insert/b1000", 1000, 1, lanes(1)),
		bc("copyfold/sink/b1000", 1000, 1, sinkPath(lanes(1))),
		bc("copyfold/sink/b5000", 5000, 1, sinkPath(lanes(1))),
		bc("copyfold_x2/sink/b1000", 1000, 2, sinkPath(lanes(1))),
		bc("copyfold_lanes2/insert/b1000", 1000, 1, lanes(2)),
		bc("copyfold_lanes2/sink/b1000", 1000, 1, sinkPath(lanes(2))),
		bc("copyfold_lanes2/sink/b5000", 5000, 1, sinkPath(lanes(2))),
	}
	cases = append(cases, extraCases...)
	if f := os.Getenv("EYE_BENCH_CASES"); f != "" {
		cases = slices.DeleteFunc(cases, func(c benchCase) bool {
			return !slices.ContainsFunc(strings.Split(f, ","), func(sub string) bool { return strings.Contains(c.name, sub) })
		})
	}
	return cases
}

// BenchmarkWriter loads the backlog with each strategy; see the file
// comment.
func BenchmarkWriter(b *testing.B) {
	bl := getBacklog()
	ctx := context.Background()
	for _, c := range benchCases() {
		b.Run(c.name, func(b *testing.B) {
			d := newBenchDB(b)
			if c.prepare != nil {
				c.prepare()
			}
			streams := [][]event.Event{bl.all}
			if c.parallel == 2 {
				streams = bl.parts[:]
			}
			var tCopy, tCopy2, tCase, cpuPG, cpuGo time.Duration
			for range b.N {
				b.StopTimer()
				// The references: raw COPY on one connection, and on two
				// (one per partition stream), in batches of 5000.
				for _, ref := range []struct {
					streams [][]event.Event
					t       *time.Duration
				}{{[][]event.Event{bl.all}, &tCopy}, {bl.parts[:], &tCopy2}} {
					d.reset(b)
					t, err := load(ctx, d, ref.streams, 5000, rawCopy)
					if err != nil {
						b.Fatal(err)
					}
					*ref.t += t
				}
				d.reset(b)
				pg0, go0 := d.clusterCPU(), processCPU()
				b.StartTimer()
				t, err := load(ctx, d, streams, c.size, c.w)
				if err != nil {
					b.Fatal(err)
				}
				tCase += t
				cpuPG += d.clusterCPU() - pg0
				cpuGo += processCPU() - go0
				b.StopTimer()
				d.verifyEvents(b, len(bl.all))
				b.StartTimer()
			}
			n := float64(b.N * len(bl.all))
			b.ReportMetric(n/tCase.Seconds(), "events/s")
			b.ReportMetric(n/tCopy.Seconds(), "copy_events/s")
			b.ReportMetric(n/tCopy2.Seconds(), "copy2_events/s")
			b.ReportMetric(tCopy.Seconds()/tCase.Seconds(), "x_copy")
			b.ReportMetric(tCopy2.Seconds()/tCase.Seconds(), "x_copy2")
			b.ReportMetric(loadAverage(), "load1")
			if cpuPG > 0 {
				b.ReportMetric(float64(cpuPG.Microseconds())/n, "pg_cpu_us/event")
			}
			b.ReportMetric(float64(cpuGo.Microseconds())/n, "go_cpu_us/event")
		})
	}
}

// clusterCPU is the CPU time the Postgres cluster has used so far (its
// postmaster and every process it started, exited ones included), or 0
// when the cluster does not run on this machine. Unlike wall time, it is
// barely affected by other work on a shared machine.
func (d benchDB) clusterCPU() time.Duration {
	var pid int
	if err := d.db.Get(&pid, `SELECT pg_backend_pid()`); err != nil {
		return 0
	}
	backend, ok := procStat(pid)
	if !ok {
		return 0
	}
	postmaster, ok := procStat(backend.ppid)
	if !ok || postmaster.comm != backend.comm { // not a local cluster
		return 0
	}
	total := postmaster.utime + postmaster.stime + postmaster.cutime + postmaster.cstime
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st.ppid == backend.ppid {
			total += st.utime + st.stime
		}
	}
	return time.Duration(total) * time.Second / 100 // USER_HZ
}

// stat is what clusterCPU needs of /proc/PID/stat.
type stat struct {
	comm                         string
	ppid                         int
	utime, stime, cutime, cstime int64
}

func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return stat{}, false
	}
	f := strings.Fields(s[end+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return stat{}, false
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i-3], 10, 64); return v }
	return stat{comm: s[open+1 : end], ppid: int(n(4)), utime: n(14), stime: n(15), cutime: n(16), cstime: n(17)}, true
}

// processCPU is the CPU time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the machine's 1-minute load average (0 if unknown): the
// reference machine is shared, and a figure taken under load is noise.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// verifyEvents checks the row count, and the session counts when the
// strategy maintains them.
func (d benchDB) verifyEvents(b *testing.B, want int) {
	b.Helper()
	var counted int
	if err := d.db.Get(&counted, `SELECT coalesce(sum(event_count), 0) FROM sessions`); err != nil {
		b.Fatal(err)
	}
	if counted == 0 { // raw COPY does not maintain sessions
		var rows int
		if err := d.db.Get(&rows, `SELECT count(*) FROM events`); err != nil || rows != want {
			b.Fatalf("stored %d events (%v), want %d", rows, err, want)
		}
		return
	}
	d.verify(b, want)
}

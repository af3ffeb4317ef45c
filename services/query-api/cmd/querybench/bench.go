package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/postgres"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// timeout is the statement timeout the store runs under: generous, so a
// slow plan shows up as a figure rather than an error.
const timeout = 30 * time.Second

// scenario is one query measured with a rotating set of parameters: run(i)
// runs it with the i-th set (modulo their number) and returns the rows it
// got.
type scenario struct {
	name   string
	target time.Duration
	params int
	run    func(ctx context.Context, s *query.Service, i int) (int, error)
}

type bench struct {
	deep  int // pages before the deep page
	db    *sqlx.DB
	store *query.Service

	// explain: one connection with auto_explain on, its plans collected.
	xdb    *sqlx.DB
	xstore *query.Service
	mu     sync.Mutex
	plans  []string
}

func newBench(ctx context.Context, dsn string, deep int) (*bench, error) {
	db, err := sqlx.ConnectContext(ctx, "postgres", dsn)
	if err != nil {
		return nil, err
	}
	// The store's SQL follows the latest migrations.
	if err := pg.Migrate(ctx, db); err != nil {
		return nil, err
	}
	store, err := newService(db)
	if err != nil {
		return nil, err
	}
	b := &bench{deep: deep, db: db, store: store}
	base, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	b.xdb = sqlx.NewDb(sql.OpenDB(pq.ConnectorWithNoticeHandler(base, func(n *pq.Error) {
		b.mu.Lock()
		b.plans = append(b.plans, n.Message)
		b.mu.Unlock()
	})), "postgres")
	b.xdb.SetMaxOpenConns(1)
	b.xdb.SetMaxIdleConns(1)
	b.xstore, err = newService(b.xdb)
	return b, err
}

// newService is the query domain on Postgres storage on db, as the
// query-api wires it.
func newService(db *sqlx.DB) (*query.Service, error) {
	storage, err := postgres.NewStore(db, timeout)
	if err != nil {
		return nil, err
	}
	return query.NewService(storage, event.DefaultRules())
}

func (b *bench) close() {
	b.db.Close()
	b.xdb.Close()
}

// describe prints the machine and the data.
func (b *bench) describe(ctx context.Context) {
	var version string
	b.db.GetContext(ctx, &version, `SELECT version()`)
	var settings []struct {
		Name  string `db:"name"`
		Value string `db:"setting"`
		Unit  sql.NullString
	}
	b.db.SelectContext(ctx, &settings, `SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'effective_cache_size', 'random_page_cost', 'jit', 'max_parallel_workers_per_gather')`)
	var counts struct {
		Events   int64 `db:"events"`
		Sessions int64 `db:"sessions"`
		Apps     int64 `db:"apps"`
	}
	b.db.GetContext(ctx, &counts, `SELECT (SELECT reltuples::bigint FROM pg_class WHERE oid = 'events'::regclass) AS events,
		(SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM applications) AS apps`)
	if counts.Events <= 0 { // a partitioned parent has no reltuples of its own
		b.db.GetContext(ctx, &counts.Events, `SELECT sum(reltuples)::bigint FROM pg_class WHERE oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass)`)
	}
	fmt.Printf("machine: %d CPUs, %s memory, %s\n", runtime.NumCPU(), memTotal(), runtime.Version())
	fmt.Printf("postgres: %s\n", version)
	for _, s := range settings {
		fmt.Printf("  %s = %s %s\n", s.Name, s.Value, s.Unit.String)
	}
	fmt.Printf("data: ~%d events, %d sessions, %d applications\n", counts.Events, counts.Sessions, counts.Apps)
}

// loadAvg is the machine's load average over the last minute, as text.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// result is a scenario's latency distribution.
type result struct {
	s                  scenario
	rows               float64
	p50, p99, max, avg time.Duration
}

func (r result) row() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	verdict := "met"
	if r.p99 > r.s.target {
		verdict = "**missed**"
	}
	return fmt.Sprintf("| %s | %.0f | %s | %s | %s | %s | %s |", r.s.name, r.rows, ms(r.p50), ms(r.p99), ms(r.max), ms(r.s.target), verdict)
}

// measure warms the cache with one run per parameter set, then times n runs.
func measure(ctx context.Context, s scenario, n int) (result, error) {
	for i := range s.params {
		if _, err := s.run(ctx, nil, i); err != nil {
			return result{}, err
		}
	}
	times := make([]time.Duration, n)
	rows := 0
	for i := range n {
		t := time.Now()
		got, err := s.run(ctx, nil, i)
		times[i] = time.Since(t)
		if err != nil {
			return result{}, err
		}
		rows += got
	}
	slices.Sort(times)
	var sum time.Duration
	for _, t := range times {
		sum += t
	}
	q := func(p float64) time.Duration { return times[min(len(times)-1, int(p*float64(len(times))))] }
	return result{s: s, rows: float64(rows) / float64(n), p50: q(0.50), p99: q(0.99), max: times[len(times)-1], avg: sum / time.Duration(n)}, nil
}

// explain runs each scenario once on the auto_explain connection and prints
// the plans Postgres reports.
func (b *bench) explain(ctx context.Context, scenarios []scenario) error {
	for _, s := range []string{
		`LOAD 'auto_explain'`,
		`SET auto_explain.log_min_duration = 0`,
		`SET auto_explain.log_analyze = on`,
		`SET auto_explain.log_buffers = on`,
		`SET auto_explain.log_timing = on`,
		`SET auto_explain.log_level = notice`,
		`SET client_min_messages = notice`,
	} {
		if _, err := b.xdb.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("auto_explain: %w", err)
		}
	}
	for _, s := range scenarios {
		b.mu.Lock()
		b.plans = nil
		b.mu.Unlock()
		if _, err := s.run(ctx, b.xstore, s.params/2); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.mu.Lock()
		fmt.Printf("\n#### %s\n\n```\n%s\n```\n", s.name, strings.TrimSpace(strings.Join(b.plans, "\n")))
		b.mu.Unlock()
	}
	return nil
}

// scenarios picks the parameters from the data: the largest and the
// smallest application, sessions of dozens of events, the last complete
// days and their hours, and deep cursors found by paging.
func (b *bench) scenarios(ctx context.Context) ([]scenario, error) {
	var apps []uuid.UUID
	if err := b.db.SelectContext(ctx, &apps, `SELECT app_id FROM sessions GROUP BY app_id ORDER BY sum(event_count) DESC`); err != nil || len(apps) == 0 {
		return nil, fmt.Errorf("applications: %v (load data with eye-gen first)", err)
	}
	big, small := apps[0], apps[len(apps)-1]
	var share struct {
		Big   int64 `db:"big"`
		Small int64 `db:"small"`
	}
	b.db.GetContext(ctx, &share, `SELECT (SELECT sum(event_count) FROM sessions WHERE app_id = $1) AS big, (SELECT sum(event_count) FROM sessions WHERE app_id = $2) AS small`, big, small)
	fmt.Printf("largest application %s: %d events; smallest %s: %d events\n", big, share.Big, small, share.Small)

	var sessions []uuid.UUID
	if err := b.db.SelectContext(ctx, &sessions, `SELECT id FROM sessions WHERE app_id = $1 AND event_count BETWEEN 20 AND 60 ORDER BY md5(id::text) LIMIT 200`, big); err != nil || len(sessions) == 0 {
		return nil, fmt.Errorf("sessions: %v", err)
	}
	var last time.Time
	if err := b.db.GetContext(ctx, &last, `SELECT max(last_event_at) FROM sessions`); err != nil {
		return nil, fmt.Errorf("last event: %w", err)
	}
	// The 10 last complete UTC days, and 4 hours of each, spread over the
	// day (the busy afternoon included).
	var days, hours []time.Time
	for d := range 10 {
		day := last.UTC().Truncate(24*time.Hour).AddDate(0, 0, -1-d)
		days = append(days, day)
		for _, h := range []int{3, 9, 14, 20} {
			hours = append(hours, day.Add(time.Duration(h)*time.Hour))
		}
	}
	cats := []string{"page interaction", "form interaction", "search"}
	const micro = time.Microsecond
	tenant, admin := query.Scope{AppID: big}, query.Scope{}
	deepTenant, err := b.deepCursor(ctx, tenant)
	if err != nil {
		return nil, err
	}
	deepAdmin, err := b.deepCursor(ctx, admin)
	if err != nil {
		return nil, err
	}
	events := func(sc query.Scope, f func(i int) (query.EventFilter, paging.Request)) func(context.Context, *query.Service, int) (int, error) {
		return func(ctx context.Context, s *query.Service, i int) (int, error) {
			f, p := f(i)
			list, _, err := b.pick(s).Events(ctx, sc, f, p)
			return len(list), err
		}
	}
	stats := func(sc query.Scope, f func(i int) query.StatsFilter) func(context.Context, *query.Service, int) (int, error) {
		return func(ctx context.Context, s *query.Service, i int) (int, error) {
			list, err := b.pick(s).Stats(ctx, sc, f(i))
			return len(list), err
		}
	}
	categoryDay := func(i int) (query.EventFilter, paging.Request) {
		from, to := days[i%len(days)], days[i%len(days)].Add(24*time.Hour-micro)
		return query.EventFilter{Category: cats[i/len(days)%len(cats)], From: &from, To: &to}, paging.Request{Limit: 100}
	}
	statsHour := func(i int) query.StatsFilter {
		h := hours[i%len(hours)]
		return query.StatsFilter{Bucket: query.Minute, From: h, To: h.Add(time.Hour - micro), ByCategory: true, ByName: true}
	}
	statsDay := func(i int) query.StatsFilter {
		d := days[i%len(days)]
		return query.StatsFilter{Bucket: query.Hour, From: d, To: d.Add(24*time.Hour - micro), ByCategory: true, ByName: true}
	}
	return []scenario{
		{"timeline: one session (largest application's key)", 10 * time.Millisecond, len(sessions),
			func(ctx context.Context, s *query.Service, i int) (int, error) {
				list, _, err := b.pick(s).Timeline(ctx, tenant, sessions[i%len(sessions)], paging.Request{Limit: 100})
				return len(list), err
			}},
		{"category over a day, 100-row page (largest application)", 10 * time.Millisecond, len(days) * len(cats), events(tenant, categoryDay)},
		{"category over a day, 100-row page (smallest application)", 10 * time.Millisecond, len(days) * len(cats), events(query.Scope{AppID: small}, categoryDay)},
		{"category over a day, 100-row page (admin, all applications)", 10 * time.Millisecond, len(days) * len(cats), events(admin, categoryDay)},
		{fmt.Sprintf("deep page: cursor %d pages in (largest application)", b.deep), 10 * time.Millisecond, 1, events(tenant, func(int) (query.EventFilter, paging.Request) {
			return query.EventFilter{}, paging.Request{Limit: 100, Cursor: deepTenant}
		})},
		{fmt.Sprintf("deep page: cursor %d pages in (admin, all applications)", b.deep), 10 * time.Millisecond, 1, events(admin, func(int) (query.EventFilter, paging.Request) {
			return query.EventFilter{}, paging.Request{Limit: 100, Cursor: deepAdmin}
		})},
		{"an hour of stats, minute buckets by category and name (largest application)", 50 * time.Millisecond, len(hours), stats(tenant, statsHour)},
		{"an hour of stats, minute buckets by category and name (admin, all applications)", 50 * time.Millisecond, len(hours), stats(admin, statsHour)},
		{"a day of stats, hour buckets by category and name (largest application)", 300 * time.Millisecond, len(days), stats(tenant, statsDay)},
		{"a day of stats, hour buckets by category and name (admin, all applications)", 300 * time.Millisecond, len(days), stats(admin, statsDay)},
	}, nil
}

// pick is s, or the measuring store when s is nil.
func (b *bench) pick(s *query.Service) *query.Service {
	if s == nil {
		return b.store
	}
	return s
}

// deepCursor pages through sc's events, newest first, b.deep pages of 100,
// and returns the cursor of the next page.
func (b *bench) deepCursor(ctx context.Context, sc query.Scope) (string, error) {
	cursor := ""
	for page := range b.deep {
		_, links, err := b.store.Events(ctx, sc, query.EventFilter{}, paging.Request{Limit: 100, Cursor: cursor})
		if err != nil {
			return "", fmt.Errorf("deep cursor: %w", err)
		}
		if links.Next == nil {
			return "", fmt.Errorf("deep cursor: only %d pages", page+1)
		}
		cursor = *links.Next
	}
	return cursor, nil
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

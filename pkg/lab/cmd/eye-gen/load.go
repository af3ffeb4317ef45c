package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/pg"
)

type options struct {
	dsn            string
	events, apps   int
	seed           uint64
	days           int
	end            time.Time
	workers        int
	partitionByDay bool
}

// batchSize is how many rows travel together from the generator to a COPY
// stream.
const batchSize = 2000

var eventCols = []string{"id", "app_id", "session_id", "category", "name", "data", "timestamp", "received_at"}

func load(ctx context.Context, o options) error {
	db, err := pg.Open(ctx, o.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := pg.Migrate(ctx, db); err != nil {
		return err
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1) x`); err != nil {
		return fmt.Errorf("check events: %w", err)
	}
	if n > 0 {
		return errors.New("the events table is not empty: load into a fresh database")
	}
	begin := o.end.AddDate(0, 0, -o.days)
	start := time.Now()

	idx, err := dropIndexes(ctx, db, o)
	if err != nil {
		return err
	}
	if o.partitionByDay {
		if err := partition(ctx, db, begin, o.end); err != nil {
			return err
		}
	}

	g := newGenerator(o.seed, o.apps, begin, o.end)
	for _, a := range g.apps {
		if err := auth.EnsureApplication(ctx, db, a.id, a.name); err != nil {
			return err
		}
	}
	var sessions []*session
	batches := make(chan []row, 4*o.workers)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range o.workers {
		wg.Go(func() {
			if err := copyEvents(ctx, db, batches); err != nil {
				cancel(err)
				for range batches { // let the generator finish
				}
			}
		})
	}
	batch := make([]row, 0, batchSize)
	emitted, t0 := 0, time.Now()
	g.generate(o.events, func(r row) bool {
		batch = append(batch, r)
		if ctx.Err() != nil {
			return false
		}
		if len(batch) < batchSize {
			return true
		}
		batches <- batch
		batch = make([]row, 0, batchSize)
		if emitted += batchSize; emitted%1_000_000 == 0 {
			log.Printf("%d events, %.0f/s", emitted, float64(emitted)/time.Since(t0).Seconds())
		}
		return true
	}, func(s *session) { sessions = append(sessions, s) })
	if ctx.Err() == nil {
		batches <- batch
	}
	close(batches)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	loaded := time.Since(start)
	log.Printf("COPY of %d events: %s (%.0f events/s)", o.events, loaded.Round(time.Second), float64(o.events)/loaded.Seconds())
	if err := copySessions(ctx, db, sessions); err != nil {
		return err
	}
	log.Printf("COPY of %d sessions done", len(sessions))

	if err := createIndexes(ctx, db, idx); err != nil {
		return err
	}
	t := time.Now()
	for _, table := range []string{"events", "sessions", "applications"} {
		if _, err := db.ExecContext(ctx, "VACUUM (ANALYZE) "+table); err != nil {
			return fmt.Errorf("vacuum %s: %w", table, err)
		}
	}
	log.Printf("vacuum and analyze: %s", time.Since(t).Round(time.Second))
	log.Printf("total: %s", time.Since(start).Round(time.Second))
	return report(ctx, db)
}

// copyEvents runs one COPY stream in its own transaction.
func copyEvents(ctx context.Context, db *sqlx.DB, batches <-chan []row) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("events", eventCols...))
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	for batch := range batches {
		for _, r := range batch {
			if _, err := stmt.ExecContext(ctx, r.id, r.app, r.session, r.category, r.name, r.data, r.ts, r.received); err != nil {
				return fmt.Errorf("copy events: %w", err)
			}
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	return nil
}

// copySessions stores the sessions rows, consistent with their events.
func copySessions(ctx context.Context, db *sqlx.DB, sessions []*session) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("copy sessions: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("sessions", "id", "app_id", "created_at", "registered_at", "first_event_at", "last_event_at", "event_count"))
	if err != nil {
		return fmt.Errorf("copy sessions: %w", err)
	}
	for _, s := range sessions {
		first, last := time.UnixMicro(s.times[0]).UTC(), time.UnixMicro(s.times[len(s.times)-1]).UTC()
		created, registered := first, sql.NullTime{}
		if !s.registered.IsZero() {
			created, registered = s.registered, sql.NullTime{Time: s.registered, Valid: true}
		}
		if _, err := stmt.ExecContext(ctx, s.id.String(), s.app.id.String(), created, registered, first, last, len(s.times)); err != nil {
			return fmt.Errorf("copy sessions: %w", err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("copy sessions: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return fmt.Errorf("copy sessions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("copy sessions: %w", err)
	}
	return nil
}

// indexes are the definitions of the events table's constraints and indexes,
// dropped for the load and recreated after it.
type indexes struct {
	pkey    string   // e.g. "PRIMARY KEY (id)"
	indexes []string // CREATE INDEX statements
}

func dropIndexes(ctx context.Context, db *sqlx.DB, o options) (indexes, error) {
	var idx indexes
	if err := db.GetContext(ctx, &idx.pkey, `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'events'::regclass AND contype = 'p'`); err != nil {
		return idx, fmt.Errorf("read primary key: %w", err)
	}
	if o.partitionByDay {
		idx.pkey = `PRIMARY KEY (id, "timestamp")` // a partitioned table's keys include the partition key
	}
	var defs []struct {
		Name string `db:"indexname"`
		Def  string `db:"indexdef"`
	}
	const q = `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'events'
		AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'events'::regclass) ORDER BY indexname`
	if err := db.SelectContext(ctx, &defs, q); err != nil {
		return idx, fmt.Errorf("read indexes: %w", err)
	}
	for _, d := range defs {
		idx.indexes = append(idx.indexes, d.Def)
		if _, err := db.ExecContext(ctx, "DROP INDEX "+pq.QuoteIdentifier(d.Name)); err != nil {
			return idx, fmt.Errorf("drop index: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE events DROP CONSTRAINT events_pkey`); err != nil {
		return idx, fmt.Errorf("drop primary key: %w", err)
	}
	return idx, nil
}

func createIndexes(ctx context.Context, db *sqlx.DB, idx indexes) error {
	conn, err := db.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, s := range []string{`SET maintenance_work_mem = '1GB'`, `SET max_parallel_maintenance_workers = 2`} {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("index settings: %w", err)
		}
	}
	for _, s := range append([]string{"ALTER TABLE events ADD CONSTRAINT events_pkey " + idx.pkey}, idx.indexes...) {
		t := time.Now()
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		log.Printf("%s: %s", s, time.Since(t).Round(100*time.Millisecond))
	}
	return nil
}

// partition replaces the (empty) events table by one range-partitioned by
// timestamp with a partition per UTC day from begin to end, and a default
// partition for anything outside.
func partition(ctx context.Context, db *sqlx.DB, begin, end time.Time) error {
	stmts := []string{
		`CREATE TABLE events_partitioned (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("timestamp")`,
		`DROP TABLE events`,
		`ALTER TABLE events_partitioned RENAME TO events`,
		`CREATE TABLE events_default PARTITION OF events DEFAULT`,
	}
	for d := begin.Truncate(24 * time.Hour); d.Before(end); d = d.Add(24 * time.Hour) {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE events_%s PARTITION OF events FOR VALUES FROM ('%s') TO ('%s')`,
			d.Format("20060102"), d.Format(time.RFC3339), d.Add(24*time.Hour).Format(time.RFC3339)))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("partition: %s: %w", s, err)
		}
	}
	return nil
}

// report prints the sizes of what was loaded.
func report(ctx context.Context, db *sqlx.DB) error {
	var rows []struct {
		Name string `db:"name"`
		Size string `db:"size"`
	}
	const q = `
		SELECT 'events (heap)' AS name, pg_size_pretty(sum(pg_table_size(c.oid))) AS size
		FROM pg_class c WHERE c.oid = 'events'::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass)
		UNION ALL
		SELECT i.relname, pg_size_pretty(pg_relation_size(i.oid) + coalesce((SELECT sum(pg_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = i.oid), 0))
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = 'events'::regclass
		UNION ALL
		SELECT 'sessions (with indexes)', pg_size_pretty(pg_total_relation_size('sessions'))`
	if err := db.SelectContext(ctx, &rows, q); err != nil {
		return fmt.Errorf("sizes: %w", err)
	}
	for _, r := range rows {
		log.Printf("size of %s: %s", r.Name, r.Size)
	}
	return nil
}

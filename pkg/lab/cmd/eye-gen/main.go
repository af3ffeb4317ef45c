// Command eye-gen loads realistic synthetic events straight into a Postgres
// database with COPY, for the query benchmarks (docs/benchmarks.md): many
// applications of very different sizes, sessions of dozens of events spread
// over minutes and interleaved in time as they are in production, skewed
// categories and names, about 300 bytes of data per event, and the sessions
// rows consistent with the events (first/last event time, count).
//
//	eye-gen -dsn postgres://eye@127.0.0.1:5432/eye?sslmode=disable [-events 10000000] [-apps 50] [-seed 1] [-days 30]
//
// The database is migrated first and its events table must be empty. The
// event indexes are dropped during the load and rebuilt afterwards (from
// their definitions, whatever the migrations made them), then the tables are
// vacuumed and analysed, as autovacuum would have left them.
// -partition-by-day turns events into a table range-partitioned by timestamp,
// one partition per day, to measure what partitioning would change; the
// migrations do not partition.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "eye-gen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eye-gen", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.dsn, "dsn", "", "Postgres DSN of the database to load (required)")
	fs.IntVar(&o.events, "events", 10_000_000, "number of events")
	fs.IntVar(&o.apps, "apps", 50, "number of applications (sizes follow Zipf's law)")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed loads the same data")
	fs.IntVar(&o.days, "days", 30, "the events span this many days, ending at -end")
	end := fs.String("end", "", "end of the span, RFC 3339 (default: the current hour)")
	fs.IntVar(&o.workers, "workers", 2, "parallel COPY streams")
	fs.BoolVar(&o.partitionByDay, "partition-by-day", false, "measurement only: partition events by timestamp, one partition per day")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case o.dsn == "":
		return fmt.Errorf("-dsn is required")
	case o.events <= 0 || o.apps <= 0 || o.days <= 0 || o.workers <= 0:
		return fmt.Errorf("-events, -apps, -days and -workers must be positive")
	}
	o.end = time.Now().UTC().Truncate(time.Hour)
	if *end != "" {
		t, err := time.Parse(time.RFC3339, *end)
		if err != nil {
			return fmt.Errorf("-end: %w", err)
		}
		o.end = t.UTC()
	}
	return load(ctx, o)
}

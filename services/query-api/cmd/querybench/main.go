// Command querybench measures the query API's storage queries on a database
// loaded by eye-gen: each scenario runs many times with a warm cache and
// reports p50/p99 latency, against the targets of docs/benchmarks.md. It
// calls the query domain on its Postgres storage itself (query.Service on
// postgres.Store, as the API wires them), so what it measures is exactly
// the SQL the API runs, plus scanning the rows into Go values; only HTTP and
// JSON encoding are left out. With -explain it prints EXPLAIN (ANALYZE,
// BUFFERS) of one run of each scenario, captured with auto_explain.
//
//	querybench -dsn postgres://eye@127.0.0.1:5432/eye?sslmode=disable [-n 300] [-explain]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "querybench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("querybench", flag.ContinueOnError)
	dsn := fs.String("dsn", "", "Postgres DSN of a database loaded by eye-gen (required)")
	n := fs.Int("n", 300, "measured runs per scenario, after one warm-up pass over its parameters")
	explain := fs.Bool("explain", false, "also print EXPLAIN (ANALYZE, BUFFERS) of each scenario")
	only := fs.String("only", "", "run only the scenarios whose name contains this")
	deep := fs.Int("deep", 1000, "pages of 100 before the deep page")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dsn == "" {
		return fmt.Errorf("-dsn is required")
	}
	b, err := newBench(ctx, *dsn, *deep)
	if err != nil {
		return err
	}
	defer b.close()
	b.describe(ctx)
	scenarios, err := b.scenarios(ctx)
	if err != nil {
		return err
	}
	var run []scenario
	for _, s := range scenarios {
		if *only == "" || contains(s.name, *only) {
			run = append(run, s)
		}
	}
	fmt.Printf("\n| scenario | rows | p50 | p99 | max | target p99 | |\n|---|---:|---:|---:|---:|---:|---|\n")
	start, load := time.Now(), loadAvg()
	for _, s := range run {
		r, err := measure(ctx, s, *n)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Println(r.row())
	}
	fmt.Printf("\n(%d runs per scenario, %s in all; load average %s before, %s after, on %d CPUs)\n",
		*n, time.Since(start).Round(time.Second), load, loadAvg(), runtime.NumCPU())
	if *explain {
		return b.explain(ctx, run)
	}
	return nil
}

// Command eye-bench is The Eye's pipeline benchmark (`make bench`): five
// scenarios (gateway single events, gateway batches, validator relay,
// writer drain, end to end), each against its physical limit measured in
// the same run, on the embedded broker and on Apache Kafka. A full run
// rewrites the generated block of docs/benchmarks.md and docs/bench.png;
// every run writes its results as JSON (and Markdown and a PNG) under
// BENCH_OUT.
//
//	eye-bench            run (configured by BENCH_* variables, see below)
//	eye-bench broker     the embedded broker, in a process of its own
//	eye-bench gin202     a gin engine whose one route answers 202
//	eye-bench report F   rewrite docs/benchmarks.md and docs/bench.png from a
//	                     full run's results JSON (e.g. after changing the report)
//
// BENCH_QUICK=1 (short phases: a wiring check, about 2 minutes per broker),
// BENCH_SCENARIOS=1,2,3,4,5, BENCH_BROKERS=kfake,apache, BENCH_PHASE (15s),
// BENCH_STEP (30s), BENCH_BACKLOG (300000), BENCH_OUT (bench-results),
// BENCH_PROFILE (1: perf record the busiest phases, when perf exists),
// BENCH_KEEP=1 (keep the work directory: logs of every process).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/lab/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "broker":
		err = runBroker(ctx, os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "gin202":
		err = runGin(ctx, os.Args[2:])
	case len(os.Args) > 2 && os.Args[1] == "report":
		err = report(os.Args[2])
	case len(os.Args) > 1:
		err = fmt.Errorf("unknown command %q (broker, gin202, report FILE.json, or none)", os.Args[1])
	default:
		err = run(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "eye-bench:", err)
		os.Exit(1)
	}
}

// runBroker runs the embedded broker as `make run` does (devstack.StartKafka
// with a data directory) until SIGTERM.
func runBroker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (host:port)")
	data := fs.String("data", "", "data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, portText, _ := strings.Cut(*addr, ":")
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	k, err := devstack.StartKafka(*data, port)
	if err != nil {
		return err
	}
	defer k.Close()
	fmt.Println("kfake on", strings.Join(k.Brokers(), ","))
	<-ctx.Done()
	return nil
}

// runGin serves the gateway's physical limit: gin.New() with one route,
// POST /events/, that reads the body and answers 202 with nothing else.
func runGin(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gin202", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/events/", func(c *gin.Context) {
		_, _ = io.Copy(io.Discard, c.Request.Body)
		c.Status(http.StatusAccepted)
	})
	r.GET("/readyz", func(c *gin.Context) { c.Status(http.StatusOK) })
	srv := &http.Server{Addr: *addr, Handler: r}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func run(ctx context.Context) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	opt := bench.Options{Root: root, Self: self, Quick: os.Getenv("BENCH_QUICK") == "1",
		Profile: os.Getenv("BENCH_PROFILE") != "0", Keep: os.Getenv("BENCH_KEEP") == "1",
		Out: envOr("BENCH_OUT", filepath.Join(root, "bench-results"))}
	if v := os.Getenv("BENCH_BROKERS"); v != "" {
		opt.Brokers = strings.Split(v, ",")
	}
	if v := os.Getenv("BENCH_SCENARIOS"); v != "" {
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("BENCH_SCENARIOS=%q", v)
			}
			opt.Scenarios = append(opt.Scenarios, n)
		}
	}
	for name, dst := range map[string]*time.Duration{"BENCH_PHASE": &opt.Phase, "BENCH_STEP": &opt.Step} {
		if v := os.Getenv(name); v != "" {
			if *dst, err = time.ParseDuration(v); err != nil {
				return fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	}
	if v := os.Getenv("BENCH_BACKLOG"); v != "" {
		if opt.Backlog, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("BENCH_BACKLOG=%q: %w", v, err)
		}
	}
	opt.Defaults()
	full := !opt.Quick && len(opt.Brokers) == 2 && len(opt.Scenarios) == 5 &&
		opt.Phase == 15*time.Second && opt.Step == 30*time.Second && opt.Backlog == 300_000
	res, err := bench.Run(ctx, opt)
	if err != nil {
		return err
	}
	stamp := res.Started.Format("20060102-150405")
	png := filepath.Join(opt.Out, "bench-"+stamp+".png")
	if err := res.WritePlot(png); err != nil {
		return err
	}
	md := res.Markdown(filepath.Base(png))
	if err := os.WriteFile(filepath.Join(opt.Out, "bench-"+stamp+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	if !full {
		fmt.Println(md)
		fmt.Fprintf(os.Stderr, "not a full run with the default settings: docs/benchmarks.md left as it is (results in %s)\n", opt.Out)
		return nil
	}
	if err := writeDocs(root, res); err != nil {
		return err
	}
	if slices.ContainsFunc(res.Targets, func(t bench.Target) bool { return !t.Met }) {
		fmt.Fprintln(os.Stderr, "some targets were missed: see the table")
	}
	return nil
}

// report rewrites the docs from a full run's results.
func report(path string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	res, err := bench.ReadResults(path)
	if err != nil {
		return err
	}
	if res.Quick {
		return fmt.Errorf("%s is a quick run: its figures do not go into the docs", path)
	}
	return writeDocs(root, res)
}

// writeDocs writes docs/bench.png and the generated block of
// docs/benchmarks.md.
func writeDocs(root string, res *bench.Results) error {
	if err := res.WritePlot(filepath.Join(root, "docs", "bench.png")); err != nil {
		return err
	}
	md := res.Markdown("bench.png")
	fmt.Println(md)
	if err := bench.WriteDoc(filepath.Join(root, "docs", "benchmarks.md"), md); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "docs/benchmarks.md and docs/bench.png rewritten")
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// repoRoot walks up from the working directory to the directory holding
// go.work and scripts/kafka.sh.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "kafka.sh")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run eye-bench inside the repository (no go.work and scripts/kafka.sh above the working directory)")
		}
		dir = parent
	}
}

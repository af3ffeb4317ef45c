// Package bench is The Eye's pipeline benchmark (`make bench`,
// pkg/lab/cmd/eye-bench): five scenarios, each measured against its physical
// limit in the same run on the same machine, on the embedded broker
// (kfake, what `make run` uses) and on Apache Kafka (scripts/kafka.sh). The
// services run as processes built from the working tree, against a
// private, durable Postgres cluster. docs/benchmarks.md explains every
// figure.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/lab/loadgen"
	"github.com/the-eye/eye/pkg/lab/stack"
)

// Options configure a run.
type Options struct {
	Root      string   // repository root (scripts/, docs/)
	Self      string   // the eye-bench executable (for `broker` and `gin202`)
	Brokers   []string // "kfake", "apache"
	Scenarios []int    // 1…5
	Quick     bool     // short phases and small backlogs: checks the wiring
	// Phase is how long each load phase of scenarios 1 and 2 lasts; Step
	// how long each rate of scenario 5 is held; Backlog the events
	// preloaded for scenarios 3 and 4.
	Phase   time.Duration
	Step    time.Duration
	Backlog int
	// TargetRate is the single-event rate scenario 1's open loop offers
	// (the target: 15 000 requests/s).
	TargetRate float64
	Profile    bool   // perf record the busiest phases (when perf exists)
	Out        string // results directory
	Keep       bool   // keep the work directory and databases
	Log        io.Writer
}

// Defaults fills in what opt leaves unset.
func (opt *Options) Defaults() {
	if len(opt.Brokers) == 0 {
		opt.Brokers = []string{"kfake", "apache"}
	}
	if len(opt.Scenarios) == 0 {
		opt.Scenarios = []int{1, 2, 3, 4, 5}
	}
	if opt.Phase == 0 {
		opt.Phase = map[bool]time.Duration{false: 15 * time.Second, true: 3 * time.Second}[opt.Quick]
	}
	if opt.Step == 0 {
		opt.Step = map[bool]time.Duration{false: 30 * time.Second, true: 5 * time.Second}[opt.Quick]
	}
	if opt.Backlog == 0 {
		opt.Backlog = map[bool]int{false: 300_000, true: 20_000}[opt.Quick]
	}
	if opt.TargetRate == 0 {
		opt.TargetRate = 15000
	}
	if opt.Log == nil {
		opt.Log = os.Stderr
	}
}

// Bench is a run in progress.
type Bench struct {
	opt    Options
	work   string
	bin    string
	pg     *stack.Cluster
	apache *stack.Broker
	seq    int
	start  time.Time

	mu      sync.Mutex
	results Results
	loads   []float64
}

// Results is everything a run measured, as written to the results JSON.
type Results struct {
	Started  time.Time `json:"started"`
	Elapsed  string    `json:"elapsed"`
	Quick    bool      `json:"quick"`
	Machine  string    `json:"machine"`
	Versions Versions  `json:"versions"`
	Load     LoadStats `json:"load_average"`
	Figures  []Figure  `json:"figures"`
	Targets  []Target  `json:"targets"`
	Profiles []Profile `json:"profiles,omitempty"`
	Notes    []string  `json:"notes,omitempty"`
}

// Versions are the software measured.
type Versions struct {
	Go, Kfake, Kafka, Java, Postgres, KafkaGo, Commit string
}

// LoadStats summarises the 1-minute load average sampled every 5 s.
type LoadStats struct {
	Min, Median, Max float64
}

// Figure is one measured case.
type Figure struct {
	Scenario int    `json:"scenario"`
	Broker   string `json:"broker"`
	Case     string `json:"case"`
	// Kind is "pipeline" (The Eye) or "limit" (the physical limit it is
	// compared with).
	Kind         string  `json:"kind"`
	Mode         string  `json:"mode"` // how it was driven, for the table
	EventsPerSec float64 `json:"events_per_sec"`
	ReqPerSec    float64 `json:"requests_per_sec,omitempty"`
	// Latency is from the intended send (open loop), from the send
	// (closed loop), or 202 → visible (scenario 5); LatencyKind says which.
	Latency     *loadgen.Summary `json:"latency,omitempty"`
	LatencyKind string           `json:"latency_kind,omitempty"`
	Ratio       float64          `json:"ratio_to_limit,omitempty"` // pipeline figures: ÷ the scenario's limit
	Load1       float64          `json:"load1"`
	Note        string           `json:"note,omitempty"`
	// Cores is the CPU each process used on average during the phase, and
	// the whole machine's.
	Cores Cores           `json:"cores,omitempty"`
	Run   *loadgen.Result `json:"run,omitempty"`
}

// Target is one of the targets and whether a broker met it.
type Target struct {
	Broker   string `json:"broker"`
	What     string `json:"what"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Profile is what perf saw during one phase.
type Profile struct {
	Broker, Phase, File string
	ByProcess           string // CPU share by command
	Hot                 string // hottest symbols of the measured process
}

func (b *Bench) logf(format string, args ...any) {
	fmt.Fprintf(b.opt.Log, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

func (b *Bench) add(f Figure) {
	f.Load1 = load1()
	b.mu.Lock()
	b.results.Figures = append(b.results.Figures, f)
	b.mu.Unlock()
	lat := ""
	if f.Latency != nil {
		lat = fmt.Sprintf(", p50 %s p99 %s p99.9 %s (%s)", msd(f.Latency.P50), msd(f.Latency.P99), msd(f.Latency.P999), f.LatencyKind)
	}
	b.logf("%d/%s %s [%s]: %.0f events/s%s%s%s", f.Scenario, f.Broker, f.Case, f.Mode, f.EventsPerSec, lat, noteSuffix(f.Note), noteSuffix(f.Cores.String()))
}

func (b *Bench) target(broker, what, measured string, met bool) {
	b.mu.Lock()
	b.results.Targets = append(b.results.Targets, Target{broker, what, measured, met})
	b.mu.Unlock()
	verdict := "MET"
	if !met {
		verdict = "MISSED"
	}
	b.logf("target %s on %s: %s — %s", what, broker, measured, verdict)
}

func (b *Bench) note(format string, args ...any) {
	b.mu.Lock()
	b.results.Notes = append(b.results.Notes, fmt.Sprintf(format, args...))
	b.mu.Unlock()
}

func noteSuffix(n string) string {
	if n == "" {
		return ""
	}
	return " — " + n
}

func msd(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

// Run runs the benchmark and returns what it measured; the results JSON
// is written to opt.Out.
func Run(ctx context.Context, opt Options) (*Results, error) {
	opt.Defaults()
	b := &Bench{opt: opt, start: time.Now()}
	b.results.Started, b.results.Quick = b.start.UTC(), opt.Quick
	work, err := os.MkdirTemp("", "eye-bench-")
	if err != nil {
		return nil, err
	}
	// Postgres runs as an unprivileged user when the benchmark runs as root.
	if err := os.Chmod(work, 0o755); err != nil {
		return nil, err
	}
	b.work = work
	defer func() {
		if opt.Keep {
			b.logf("kept %s", work)
			return
		}
		os.RemoveAll(work)
	}()
	b.logf("work dir %s", work)

	b.bin = filepath.Join(work, "bin")
	b.results.Versions.Commit = gitDescribe(opt.Root)
	if err := harness.Build(opt.Root, b.bin); err != nil {
		return nil, err
	}
	b.logf("built %v", harness.Services)
	// The embedded broker and the gin baseline are eye-bench itself; links
	// under their own names keep them apart from the load generator in
	// profiles (perf names a process after the file it was started from).
	for _, name := range []string{"kfake", "gin202"} {
		if err := os.Symlink(opt.Self, filepath.Join(b.bin, name)); err != nil {
			return nil, err
		}
	}

	stopLoad := b.sampleLoad()
	defer stopLoad()

	b.pg = &stack.Cluster{Dir: filepath.Join(work, "pg"), Durable: true}
	if err := b.pg.Start(ctx); err != nil {
		return nil, err
	}
	defer b.pg.Stop()
	b.logf("Postgres (durable) on port %d", b.pg.Port())

	for _, name := range opt.Brokers {
		var br *broker
		switch name {
		case "kfake":
			br, err = b.startKfake(ctx)
		case "apache":
			br, err = b.startApache(ctx)
		default:
			err = fmt.Errorf("unknown broker %q (kfake, apache)", name)
		}
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		b.logf("broker %s on %s", name, br.addr)
		for _, s := range opt.Scenarios {
			if err := ctx.Err(); err != nil {
				br.stop()
				return nil, err
			}
			if err := br.fresh(ctx); err != nil {
				br.stop()
				return nil, err
			}
			if err := b.scenario(ctx, br, s); err != nil {
				b.logf("scenario %d on %s failed: %v", s, name, err)
				b.note("scenario %d on %s failed: %v", s, name, firstLine(err.Error()))
			}
		}
		br.stop()
	}
	stopLoad()
	b.results.Elapsed = time.Since(b.start).Round(time.Second).String()
	b.results.Machine = stack.Machine()
	b.results.Versions = b.versions(b.results.Versions.Commit)
	b.results.Load = b.loadStats()
	if err := b.write(); err != nil {
		return &b.results, err
	}
	return &b.results, nil
}

func (b *Bench) scenario(ctx context.Context, br *broker, s int) error {
	switch s {
	case 1:
		return b.gatewaySingle(ctx, br)
	case 2:
		return b.gatewayBatches(ctx, br)
	case 3:
		return b.validatorRelay(ctx, br)
	case 4:
		return b.writerDrain(ctx, br)
	case 5:
		return b.endToEnd(ctx, br)
	}
	return fmt.Errorf("no scenario %d", s)
}

// write saves the results as JSON under opt.Out.
func (b *Bench) write() error {
	if b.opt.Out == "" {
		return nil
	}
	if err := os.MkdirAll(b.opt.Out, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(b.results, "", "  ")
	if err != nil {
		return err
	}
	name := "bench-" + b.start.UTC().Format("20060102-150405") + map[bool]string{true: "-quick", false: ""}[b.opt.Quick] + ".json"
	path := filepath.Join(b.opt.Out, name)
	b.logf("results in %s", path)
	return os.WriteFile(path, raw, 0o644)
}

// sampleLoad records the 1-minute load average every 5 s until stopped.
func (b *Bench) sampleLoad() func() {
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			b.mu.Lock()
			b.loads = append(b.loads, load1())
			b.mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}

func (b *Bench) loadStats() LoadStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.loads) == 0 {
		return LoadStats{}
	}
	s := slices.Clone(b.loads)
	slices.Sort(s)
	return LoadStats{Min: s[0], Median: s[len(s)/2], Max: s[len(s)-1]}
}

func load1() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// profile runs perf system-wide while phase runs and records the CPU
// share of each command and the hottest symbols of proc (a command name as
// perf shows it, e.g. "ingest-gateway"). Without perf, or with Profile
// off, it only runs phase.
func (b *Bench) profile(br *broker, name, proc string, phase func() error) error {
	if !b.opt.Profile {
		return phase()
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		return phase()
	}
	dir := filepath.Join(b.opt.Out, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(dir, sanitize(br.name+"-"+name)+".perf.data")
	_ = os.Remove(file)
	rec := exec.Command(perf, "record", "-F", "199", "-a", "-g", "-o", file)
	rec.Stdout, rec.Stderr = io.Discard, io.Discard
	if err := rec.Start(); err != nil {
		return phase()
	}
	perr := phase()
	_ = rec.Process.Signal(os.Interrupt)
	_ = rec.Wait()
	byComm, _ := exec.Command(perf, "report", "-i", file, "--stdio", "--no-children", "--sort", "comm", "-g", "none", "--percent-limit", "2").Output()
	// Inclusive time (children) relative to the process: where its CPU
	// goes, by function and everything it calls.
	hot, _ := exec.Command(perf, "report", "-i", file, "--stdio", "--children", "--percentage", "relative", "--comm", proc,
		"--sort", "sym", "-g", "none", "--percent-limit", "4").Output()
	p := Profile{Broker: br.name, Phase: name, File: file, ByProcess: perfTable(string(byComm), 12), Hot: perfTable(dropPlumbing(string(hot)), 30)}
	b.mu.Lock()
	b.results.Profiles = append(b.results.Profiles, p)
	b.mu.Unlock()
	b.logf("perf %s/%s:\n%s", br.name, name, p.ByProcess)
	return perr
}

// plumbing are frames that only pass calls on (goroutine entry, HTTP
// serving, middleware): dropped from the inclusive profiles so that the
// work shows.
var plumbing = []string{"runtime.goexit", "gowrap", "-fm", "runtime.systemstack", "net/http.(*conn).serve",
	"httpx.requestMetrics", "errgroup.(*Group).Go.func", "main.run.func", "sync.(*WaitGroup).Go.func",
	"net/http.serverHandler", "gin.(*Context).Next", "gin.(*Engine)", "httpx.NewEngine.", "httpapi.(*API).Register.",
	"httpapi.beaconKey", "httpapi.checkOrigin", "httpapi.urlKeyWriteOnly", "httpapi.(*API).bounded", "runtime.mcall",
	"runtime.morestack", "[unknown]"}

func dropPlumbing(report string) string {
	var keep []string
line:
	for _, l := range strings.Split(report, "\n") {
		for _, p := range plumbing {
			if strings.Contains(l, p) {
				continue line
			}
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// perfTable keeps the data lines of a perf report.
func perfTable(out string, n int) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		keep = append(keep, strings.TrimRight(line, " "))
		if len(keep) == n {
			break
		}
	}
	return strings.Join(keep, "\n")
}

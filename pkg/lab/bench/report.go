package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/the-eye/eye/pkg/pg"
)

// Markers of the generated block in docs/benchmarks.md.
const (
	DocBegin = "<!-- BEGIN make bench results: written by `make bench`, do not edit by hand -->"
	DocEnd   = "<!-- END make bench results -->"
)

// versions names what was measured.
func (b *Bench) versions(commit string) Versions {
	v := Versions{Go: runtime.Version(), Commit: commit, Kfake: "unknown", KafkaGo: "unknown", Kafka: "not run", Java: "unknown", Postgres: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/twmb/franz-go/pkg/kfake":
				v.Kfake = d.Version
			case "github.com/segmentio/kafka-go":
				v.KafkaGo = d.Version
			}
		}
	}
	if b.apache != nil {
		v.Kafka = b.apache.Version()
	}
	if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
		v.Java = firstLine(string(out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if db, err := pg.Open(ctx, b.pg.DSN("postgres")); err == nil {
		_ = db.GetContext(ctx, &v.Postgres, "SELECT version()")
		db.Close()
		v.Postgres, _, _ = strings.Cut(v.Postgres, " on ")
	}
	return v
}

// gitDescribe names the commit checked out, and whether services/ or pkg/
// differ from it.
func gitDescribe(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "commit unknown"
	}
	desc := "commit " + strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", "services", "pkg").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		desc += " with uncommitted changes to services/ or pkg/"
	}
	return desc
}

// Markdown renders the results as the generated block of
// docs/benchmarks.md (without the markers).
func (r *Results) Markdown(plot string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	mode := ""
	if r.Quick {
		mode = " (quick mode: short phases, small backlogs — wiring check, not figures)"
	}
	w("Run of %s, %s in all%s; %s.\n\n", r.Started.Format("2006-01-02 15:04 MST"), r.Elapsed, mode, r.Versions.Commit)
	w("- **Machine**: %s; the brokers, Postgres, every service process and the load generator share it.\n", r.Machine)
	w("- **Software**: %s; kfake %s (embedded broker, in a process of its own with a data directory, as `make run` runs it); "+
		"Apache Kafka %s (KRaft, one node, `scripts/kafka.sh`; %s); %s, durable (fsync, synchronous_commit and full_page_writes on); "+
		"kafka-go %s.\n", r.Versions.Go, r.Versions.Kfake, r.Versions.Kafka, r.Versions.Java, r.Versions.Postgres, r.Versions.KafkaGo)
	w("- **Load average** (1 min, sampled every 5 s during the run): min %.1f, median %.1f, max %.1f.\n\n", r.Load.Min, r.Load.Median, r.Load.Max)
	if plot != "" {
		w("![throughput and latency per scenario and broker](%s)\n\n", plot)
	}

	w("#### Targets\n\n| target | broker | measured | |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		verdict := "met"
		if !t.Met {
			verdict = "**missed**"
		}
		w("| %s | %s | %s | %s |\n", t.What, t.Broker, t.Measured, verdict)
	}
	w("\n#### Figures\n\n")
	w("Latency: *open* = open loop, from each request's intended send time (coordinated omission corrected); " +
		"*closed* = closed loop, from the actual send (what each connection saw); *visible* = from the 202 until " +
		"`GET /events/{id}` finds the event. × limit = maximum events/s over the physical limit's maximum, " +
		"same broker, same run (not given at a fixed offered rate, where both answer what is offered).\n\n")
	w("| # | case | broker | how | events/s | × limit | p50 | p99 | p99.9 | latency | CPU (cores, average over the phase) | load | notes |\n")
	w("|---|---|---|---|---:|---:|---:|---:|---:|---|---|---:|---|\n")
	figs := append([]Figure(nil), r.Figures...)
	sort.SliceStable(figs, func(i, j int) bool {
		if figs[i].Scenario != figs[j].Scenario {
			return figs[i].Scenario < figs[j].Scenario
		}
		return brokerOrder(figs[i].Broker) < brokerOrder(figs[j].Broker)
	})
	for _, f := range figs {
		name := f.Case
		if f.Kind == "limit" {
			name = "*limit:* " + name
		}
		rat := ""
		// A ratio compares maximum throughputs; at a fixed offered rate
		// both sides answer what is offered.
		if f.Ratio > 0 && !strings.HasPrefix(f.Mode, "open") {
			rat = fmt.Sprintf("%.2f", f.Ratio)
		}
		p50, p99, p999, kind := "", "", "", ""
		if f.Latency != nil && f.Latency.Count > 0 {
			p50, p99, p999 = msCell(f.Latency.P50), msCell(f.Latency.P99), msCell(f.Latency.P999)
			kind = map[string]string{"from intended send": "open", "closed loop": "closed", "HTTP, from intended send": "open",
				"202 → visible in query-api": "visible"}[f.LatencyKind]
		}
		w("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s |\n", f.Scenario, name, f.Broker, f.Mode,
			thousands(f.EventsPerSec), rat, p50, p99, p999, kind, strings.TrimPrefix(f.Cores.String(), "cores: "), f.Load1, f.Note)
	}
	if len(r.Notes) > 0 {
		w("\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
	}
	if len(r.Profiles) > 0 {
		w("\n#### CPU profiles\n\n`perf record -F 199 -a -g` over the whole machine during the phase (the services expose no pprof " +
			"endpoint); CPU share by command, then where the measured process spends its CPU: functions with the time of everything they call (inclusive), relative to the process.\n")
		for _, p := range r.Profiles {
			w("\n<details><summary>%s, %s</summary>\n\n```\n%s\n```\n", p.Phase, p.Broker, p.ByProcess)
			if hot := perfTable(dropPlumbing(p.Hot), 20); hot != "" {
				w("\n```\n%s\n```\n", hot)
			}
			w("\n</details>\n")
		}
	}
	return b.String()
}

func brokerOrder(b string) int {
	if b == "kfake" {
		return 0
	}
	return 1
}

func msCell(d time.Duration) string {
	ms := float64(d) / 1e6
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	default:
		return fmt.Sprintf("%.1f s", ms/1000)
	}
}

// thousands formats n rounded, with thin separators: 123 456.
func thousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ' ')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// WriteDoc replaces the generated block of the file at path with block.
func WriteDoc(path, block string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(raw)
	i, j := strings.Index(doc, DocBegin), strings.Index(doc, DocEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q … %q block", path, DocBegin, DocEnd)
	}
	doc = doc[:i] + DocBegin + "\n\n" + block + "\n" + doc[j:]
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadResults loads a results JSON written by Run.
func ReadResults(path string) (*Results, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

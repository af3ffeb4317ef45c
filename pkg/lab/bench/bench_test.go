package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/lab/loadgen"
)

func sampleResults() *Results {
	lat := func(p50, p99 time.Duration) *loadgen.Summary {
		return &loadgen.Summary{Count: 1000, P50: p50, P99: p99, P999: 2 * p99, Max: 3 * p99}
	}
	r := &Results{Started: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Elapsed: "19m0s", Machine: "test machine",
		Load: LoadStats{Min: 1, Median: 2.5, Max: 4}}
	for _, br := range []string{"kfake", "apache"} {
		r.Figures = append(r.Figures,
			Figure{Scenario: 1, Broker: br, Case: "gateway, 1 event/request", Kind: "pipeline", Mode: "closed loop, 64 connections", EventsPerSec: 12000, Latency: lat(3*time.Millisecond, 10*time.Millisecond), LatencyKind: "closed loop", Ratio: 0.4},
			Figure{Scenario: 1, Broker: br, Case: "gateway, 1 event/request", Kind: "pipeline", Mode: "open loop, 15000 req/s offered", EventsPerSec: 11000, Latency: lat(300*time.Millisecond, 2*time.Second), LatencyKind: "from intended send"},
			Figure{Scenario: 1, Broker: br, Case: "gin handler answering 202", Kind: "limit", Mode: "closed loop, 64 connections", EventsPerSec: 30000, Latency: lat(time.Millisecond, 5*time.Millisecond), LatencyKind: "closed loop"},
			Figure{Scenario: 2, Broker: br, Case: "gateway, JSON arrays of 100", Kind: "pipeline", Mode: "closed loop, 16 connections", EventsPerSec: 50000, Latency: lat(30*time.Millisecond, 80*time.Millisecond), LatencyKind: "closed loop", Ratio: 0.25},
			Figure{Scenario: 2, Broker: br, Case: "raw kafka-go writer", Kind: "limit", Mode: "closed loop", EventsPerSec: 200000},
			Figure{Scenario: 3, Broker: br, Case: "validator", Kind: "pipeline", Mode: "drain", EventsPerSec: 30000, Ratio: 0.4},
			Figure{Scenario: 4, Broker: br, Case: "writer", Kind: "pipeline", Mode: "drain", EventsPerSec: 45000, Ratio: 0.55},
			Figure{Scenario: 5, Broker: br, Case: "end to end, sustained (highest rate held)", Kind: "pipeline", Mode: "open loop", EventsPerSec: 20000, Latency: lat(9*time.Millisecond, 40*time.Millisecond), LatencyKind: "HTTP, from intended send"},
			Figure{Scenario: 5, Broker: br, Case: "ingest → queryable", Kind: "pipeline", Mode: "open loop", EventsPerSec: 10000, Latency: lat(280*time.Millisecond, 640*time.Millisecond), LatencyKind: "202 → visible in query-api"},
		)
		r.Targets = append(r.Targets, Target{Broker: br, What: "≥ 100 000 events/s in batches", Measured: "50 000", Met: false},
			Target{Broker: br, What: "x", Measured: "y", Met: true})
	}
	return r
}

func TestMarkdownHasEveryFigureAndVerdict(t *testing.T) {
	md := sampleResults().Markdown("bench.png")
	for _, want := range []string{
		"![throughput and latency per scenario and broker](bench.png)",
		"| ≥ 100 000 events/s in batches | kfake | 50 000 | **missed** |",
		"| x | apache | y | met |",
		"| 1 | gateway, 1 event/request | kfake | closed loop, 64 connections | 12 000 | 0.40 | 3.00 ms | 10 ms | 20 ms | closed |",
		"| 1 | *limit:* gin handler answering 202 | apache |",
		"| 5 | ingest → queryable | apache | open loop | 10 000 |  | 280 ms | 640 ms | 1.3 s | visible |",
		"median 2.5",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// kfake rows come before apache rows within a scenario.
	if strings.Index(md, "| 3 | validator | kfake") > strings.Index(md, "| 3 | validator | apache") {
		t.Error("rows not ordered by scenario, then kfake before apache")
	}
}

func TestPlotIsAPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.png")
	if err := sampleResults().WritePlot(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("\x89PNG\r\n\x1a\n")) || len(raw) < 20_000 {
		t.Errorf("not a drawn PNG: %d bytes", len(raw))
	}
	if err := (&Results{}).WritePlot(path); err != nil {
		t.Errorf("empty results: %v", err)
	}
}

func TestWriteDocReplacesOnlyTheGeneratedBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	doc := "# Title\n\nhand-written\n\n" + DocBegin + "\nold figures\n" + DocEnd + "\n\n## Query benchmark\n\nkept\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteDoc(path, "new figures\n"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	want := "# Title\n\nhand-written\n\n" + DocBegin + "\n\nnew figures\n\n" + DocEnd + "\n\n## Query benchmark\n\nkept\n"
	if string(raw) != want {
		t.Errorf("got\n%s\nwant\n%s", raw, want)
	}
	if err := os.WriteFile(path, []byte("no markers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if WriteDoc(path, "x") == nil {
		t.Error("a document without the markers must not be rewritten")
	}
}

func TestDrainRateLeavesOutStartUp(t *testing.T) {
	t0 := time.Now()
	d := drained{total: 100_000, started: t0, first: t0.Add(4 * time.Second), lagAtFirst: 90_000, done: t0.Add(7 * time.Second)}
	if r := d.rate(); r < 29_999 || r > 30_001 {
		t.Errorf("rate %.0f, want 90 000 events in 3 s", r)
	}
	d.lagAtFirst = 0 // done before any progress was seen
	d.first = d.done
	if r := d.rate(); r < 14_285 || r > 14_286 {
		t.Errorf("rate %.0f, want the whole backlog over the whole time", r)
	}
	if thousands(1234567.4) != "1 234 567" || thousands(999) != "999" {
		t.Errorf("thousands: %q %q", thousands(1234567.4), thousands(999))
	}
}

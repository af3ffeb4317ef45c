package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestHistogramPercentilesAreWithinATenthOfAPercent(t *testing.T) {
	var h Histogram
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 200000 {
		// Log-normal around 2 ms with a long tail, plus a few outliers.
		d := time.Duration(2e6 * rng.ExpFloat64() * rng.ExpFloat64())
		if rng.IntN(1000) == 0 {
			d = time.Duration(rng.Int64N(int64(2 * time.Second)))
		}
		all = append(all, d)
		h.Record(d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if diff := float64(got-want) / float64(want); diff < -0.001 || diff > 0.001 {
			t.Errorf("p%g: got %s, want %s (%.2f%% off)", q*100, got, want, 100*diff)
		}
	}
	if h.Count() != int64(len(all)) || h.Max() != all[len(all)-1] {
		t.Errorf("count %d max %s, want %d and %s", h.Count(), h.Max(), len(all), all[len(all)-1])
	}
	if h.Quantile(1) != h.Max() {
		t.Errorf("p100 %s != max %s", h.Quantile(1), h.Max())
	}
}

func TestHistogramSmallValuesAndMerge(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{3, 1, 2} {
		h.Record(d)
	}
	if h.Quantile(0.5) != 2 || h.Quantile(0.1) != 1 || h.Quantile(1) != 3 {
		t.Errorf("exact small values: p50 %d p10 %d p100 %d", h.Quantile(0.5), h.Quantile(0.1), h.Quantile(1))
	}
	var empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Mean() != 0 {
		t.Error("empty histogram")
	}
	var merged Histogram
	merged.Merge(&h)
	merged.Merge(&h)
	if merged.Count() != 6 || merged.Quantile(0.5) != 2 {
		t.Errorf("merge: count %d p50 %d", merged.Count(), merged.Quantile(0.5))
	}
}

// A server that takes 20 ms per request, one at a time, cannot follow 200
// requests/s: the open loop must send every scheduled request anyway
// (late), and measure their latency from when they were due, so the
// queueing shows; the service time stays 20 ms.
func TestOpenLoopCountsLateRequestsFromTheirIntendedTime(t *testing.T) {
	op := func(ctx context.Context, _ int) (int, error) {
		time.Sleep(20 * time.Millisecond)
		return 1, nil
	}
	res, err := Run(context.Background(), Config{Rate: 200, Duration: 250 * time.Millisecond, Workers: 1, Grace: 10 * time.Second}, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 50 || res.OK != 50 || res.Unsent != 0 {
		t.Fatalf("sent %d ok %d unsent %d, want every scheduled request sent", res.Sent, res.OK, res.Unsent)
	}
	if res.Late < 45 || res.Blocked < 45 {
		t.Errorf("late %d blocked %d, want ≥ 45 of 50", res.Late, res.Blocked)
	}
	// The last request is due at 245 ms and answered after ~1 s; the 25th
	// is due at 120 ms and answered after ~500 ms.
	if res.Latency.Max < 600*time.Millisecond || res.Latency.P50 < 250*time.Millisecond {
		t.Errorf("latency from intended time: p50 %s max %s, want the queueing included", res.Latency.P50, res.Latency.Max)
	}
	if res.Service.P50 > 200*time.Millisecond {
		t.Errorf("service time p50 %s, want ≈ 20 ms", res.Service.P50)
	}
	if !res.Held() {
		t.Error("nothing was dropped and nothing failed: held (late requests show in the latency)")
	}
}

func TestOpenLoopGivesUpAfterGraceAndCountsUnsent(t *testing.T) {
	op := func(ctx context.Context, _ int) (int, error) {
		time.Sleep(50 * time.Millisecond)
		return 1, nil
	}
	res, err := Run(context.Background(), Config{Rate: 100, Duration: 300 * time.Millisecond, Workers: 1, Grace: 100 * time.Millisecond}, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Unsent == 0 || res.Sent+res.Unsent != 30 {
		t.Errorf("sent %d unsent %d: want the ones not sent within the grace counted, and nothing lost", res.Sent, res.Unsent)
	}
	if res.Held() {
		t.Error("a run with unsent requests did not hold its rate")
	}
}

func TestOpenLoopKeepsTheRateAndCountsFailures(t *testing.T) {
	var n atomic.Int64
	op := func(ctx context.Context, _ int) (int, error) {
		if n.Add(1)%10 == 0 {
			return 0, errors.New("503")
		}
		return 100, nil
	}
	start := time.Now()
	res, err := Run(context.Background(), Config{Rate: 1000, Duration: 300 * time.Millisecond, Workers: 8}, op)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 290*time.Millisecond {
		t.Errorf("300 requests at 1000/s took %s", took)
	}
	if res.Sent != 300 || res.Failed != 30 || res.OK != 270 || res.Events != 27000 || res.Errors["503"] != 30 {
		t.Errorf("sent %d failed %d ok %d events %d errors %v", res.Sent, res.Failed, res.OK, res.Events, res.Errors)
	}
	if res.Held() {
		t.Error("failures: not held")
	}
}

func TestMaxModeKeepsWorkersBusy(t *testing.T) {
	var inflight, most atomic.Int64
	op := func(ctx context.Context, _ int) (int, error) {
		v := inflight.Add(1)
		for {
			m := most.Load()
			if v <= m || most.CompareAndSwap(m, v) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		inflight.Add(-1)
		return 1, nil
	}
	res, err := Run(context.Background(), Config{Duration: 200 * time.Millisecond, Workers: 4}, op)
	if err != nil {
		t.Fatal(err)
	}
	if most.Load() != 4 || res.OK < 100 || res.Mode != "max" {
		t.Errorf("most in flight %d, ok %d, mode %s", most.Load(), res.OK, res.Mode)
	}
}

func TestEventsAreRealistic(t *testing.T) {
	apps := []App{{Key: "a", Weight: 5}, {Key: "b", Weight: 3}, {Key: "c", Weight: 1}}
	g := NewGenerator(apps, 50, 7)
	sessions := map[uuid.UUID]bool{}
	cats := map[string]int{}
	perApp := make([]int, len(apps))
	var dataBytes, docBytes int
	const n = 20000
	for range n {
		e := g.Next()
		perApp[e.App]++
		sessions[e.Session] = true
		cats[e.Category]++
		dataBytes += len(e.Data)
		doc := Single(e)
		docBytes += len(doc)
		var v struct {
			ID        string         `json:"id"`
			SessionID string         `json:"session_id"`
			Category  string         `json:"category"`
			Name      string         `json:"name"`
			Data      map[string]any `json:"data"`
			Timestamp time.Time      `json:"timestamp"`
		}
		if err := json.Unmarshal(doc, &v); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if v.ID != e.ID.String() || v.SessionID != e.Session.String() || len(v.Data) < 6 || v.Name == "" || time.Since(v.Timestamp) > time.Minute {
			t.Fatalf("event does not round-trip: %s", doc)
		}
	}
	if avg := dataBytes / n; avg < 250 || avg > 350 {
		t.Errorf("data is %d bytes on average, want ≈ 300", avg)
	}
	t.Logf("data %d bytes, whole event %d bytes on average; %d sessions", dataBytes/n, docBytes/n, len(sessions))
	if len(sessions) < 500 {
		t.Errorf("%d sessions in %d events, want many (sessions end and new ones open)", len(sessions), n)
	}
	if !(perApp[0] > perApp[1] && perApp[1] > perApp[2]) || cats["page interaction"] < n/2 || cats["performance"] > n/20 {
		t.Errorf("skew: apps %v, categories %v", perApp, cats)
	}
}

func TestBodies(t *testing.T) {
	g := NewGenerator([]App{{Key: "a", Weight: 1}, {Key: "b", Weight: 1}}, 10, 1)
	batch := g.Batch(100)
	for _, e := range batch[1:] {
		if e.App != batch[0].App {
			t.Fatal("a batch mixes applications (one request carries one key)")
		}
	}
	var arr []map[string]any
	if err := json.Unmarshal(Array(batch), &arr); err != nil || len(arr) != 100 {
		t.Fatalf("array: %d, %v", len(arr), err)
	}
	lines := strings.Split(strings.TrimSuffix(string(NDJSON(batch)), "\n"), "\n")
	if len(lines) != 100 || !bytes.Equal([]byte(lines[3]), Single(batch[3])) {
		t.Fatalf("ndjson: %d lines", len(lines))
	}
}

package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var brokerColors = map[string]color.Color{
	"kfake":  color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"apache": color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// throughputCase picks a figure for the throughput panel and names its bar.
func throughputCase(f Figure) (string, bool) {
	closed := strings.HasPrefix(f.Mode, "closed")
	switch {
	case f.Scenario == 1 && closed && f.Kind == "pipeline":
		return "1 gateway\nsingle", true
	case f.Scenario == 1 && closed && f.Kind == "limit":
		return "1 limit:\ngin 202", true
	case f.Scenario == 2 && strings.Contains(f.Case, "arrays"):
		return "2 gateway\narrays", true
	case f.Scenario == 2 && strings.Contains(f.Case, "NDJSON"):
		return "2 gateway\nNDJSON", true
	case f.Scenario == 2 && f.Kind == "limit":
		return "2 limit:\nkafka-go", true
	case f.Scenario == 3 && f.Kind == "pipeline":
		return "3 validator", true
	case f.Scenario == 3 && f.Kind == "limit":
		return "3 limit:\nraw relay", true
	case f.Scenario == 4 && f.Kind == "pipeline":
		return "4 writer", true
	case f.Scenario == 4 && f.Kind == "limit":
		return "4 limit:\nraw COPY", true
	case f.Scenario == 5 && strings.Contains(f.Case, "sustained"):
		return "5 end to end\nsustained", true
	}
	return "", false
}

// latencyCase picks a figure for the latency panel.
func latencyCase(f Figure) (string, bool) {
	if f.Latency == nil || f.Latency.Count == 0 {
		return "", false
	}
	open := strings.HasPrefix(f.Mode, "open")
	switch {
	case f.Scenario == 1 && open && f.Kind == "pipeline" && !strings.Contains(f.Mode, "half"):
		return "1 gateway\nopen, target", true
	case f.Scenario == 1 && open && f.Kind == "pipeline":
		return "1 gateway open,\nhalf its most", true
	case f.Scenario == 1 && open && f.Kind == "limit":
		return "1 gin 202\nopen, target", true
	case f.Scenario == 2 && strings.Contains(f.Case, "arrays"):
		return "2 arrays\nclosed", true
	case f.Scenario == 2 && strings.Contains(f.Case, "NDJSON"):
		return "2 NDJSON\nclosed", true
	case f.Scenario == 2 && f.Kind == "limit":
		return "2 kafka-go\nclosed", true
	case f.Scenario == 5 && strings.Contains(f.Case, "sustained"):
		return "5 HTTP at\nsustained", true
	case f.Scenario == 5 && strings.Contains(f.Case, "queryable"):
		return "5 202 → visible\nhalf rate", true
	}
	return "", false
}

// WritePlot draws throughput (top) and latency (bottom) per scenario and
// broker into a PNG.
func (r *Results) WritePlot(path string) error {
	brokers := []string{}
	seen := map[string]bool{}
	for _, f := range r.Figures {
		if !seen[f.Broker] {
			seen[f.Broker] = true
			brokers = append(brokers, f.Broker)
		}
	}

	// Throughput.
	var tLabels []string
	tIndex := map[string]int{}
	tVals := map[string]map[string]float64{}
	for _, f := range r.Figures {
		label, ok := throughputCase(f)
		if !ok {
			continue
		}
		if _, ok := tIndex[label]; !ok {
			tIndex[label] = len(tLabels)
			tLabels = append(tLabels, label)
		}
		if tVals[f.Broker] == nil {
			tVals[f.Broker] = map[string]float64{}
		}
		tVals[f.Broker][label] = f.EventsPerSec / 1000
	}
	top := plot.New()
	top.Title.Text = "Throughput (thousand events/s): The Eye and its physical limit, same run, same machine"
	top.Y.Label.Text = "k events/s"
	top.Y.Min = 0
	top.Y.Tick.Marker = plot.DefaultTicks{}
	for _, byLabel := range tVals {
		for _, v := range byLabel {
			top.Y.Max = max(top.Y.Max, v*1.08)
		}
	}
	width := vg.Points(22)
	for k, br := range brokers {
		vals := make(plotter.Values, len(tLabels))
		for i, l := range tLabels {
			vals[i] = tVals[br][l]
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.Color = brokerColors[br]
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(float64(k)-float64(len(brokers)-1)/2) * width
		top.Add(bars)
		top.Legend.Add(br, bars)
	}
	top.Legend.Top = true
	top.Add(plotter.NewGrid())
	if len(tLabels) > 0 {
		top.NominalX(tLabels...)
	}

	// Latency (log scale), p50 / p99 / p99.9 as three glyphs.
	var lLabels []string
	lIndex := map[string]int{}
	type pt struct{ x, p50, p99, p999 float64 }
	pts := map[string][]pt{}
	for _, f := range r.Figures {
		label, ok := latencyCase(f)
		if !ok {
			continue
		}
		if _, ok := lIndex[label]; !ok {
			lIndex[label] = len(lLabels)
			lLabels = append(lLabels, label)
		}
		pts[f.Broker] = append(pts[f.Broker], pt{x: float64(lIndex[label]), p50: msf(f.Latency.P50), p99: msf(f.Latency.P99), p999: msf(f.Latency.P999)})
	}
	bottom := plot.New()
	bottom.Title.Text = "Latency (ms, log scale): filled circle p50, triangle p99, square p99.9"
	bottom.Y.Label.Text = "ms"
	bottom.Y.Scale = plot.LogScale{}
	bottom.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	bottom.Add(plotter.NewGrid())
	glyphs := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}}
	minY, maxY := math.Inf(1), 0.0
	for k, br := range brokers {
		off := (float64(k) - float64(len(brokers)-1)/2) * 0.18
		for g, get := range []func(pt) float64{func(p pt) float64 { return p.p50 }, func(p pt) float64 { return p.p99 }, func(p pt) float64 { return p.p999 }} {
			xys := make(plotter.XYs, 0, len(pts[br]))
			for _, p := range pts[br] {
				y := math.Max(get(p), 0.01)
				minY, maxY = math.Min(minY, y), math.Max(maxY, y)
				xys = append(xys, plotter.XY{X: p.x + off, Y: y})
			}
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return err
			}
			sc.GlyphStyle.Color = brokerColors[br]
			sc.GlyphStyle.Shape = glyphs[g]
			sc.GlyphStyle.Radius = vg.Points(4)
			bottom.Add(sc)
			if g == 1 {
				bottom.Legend.Add(br, sc)
			}
		}
	}
	bottom.Y.Min, bottom.Y.Max = 1, 1000 // nothing to show: a log axis still needs a range
	if maxY > 0 {
		bottom.Y.Min, bottom.Y.Max = minY/2, maxY*2
	}
	bottom.Legend.Top = true
	if len(lLabels) > 0 {
		bottom.NominalX(lLabels...)
	}
	bottom.X.Min, bottom.X.Max = -0.5, float64(len(lLabels))-0.5

	img := vgimg.New(vg.Points(1200), vg.Points(900))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12), PadY: vg.Points(18)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func msf(d interface{ Seconds() float64 }) float64 { return d.Seconds() * 1000 }

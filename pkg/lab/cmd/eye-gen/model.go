package main

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/lab/traffic"
)

// Session shape: lengths log-normal around 20 events (mean about 27),
// events about 20 s apart, so a session lasts minutes and many are open at
// once.
const (
	sessionMedian   = 20
	sessionSigma    = 0.8
	sessionMax      = 400
	meanGap         = 20 * time.Second
	registeredShare = 0.3
)

// app is a generated application.
type app struct {
	id   uuid.UUID
	name string
	host string
}

// session is a generated session with its event times (Unix microseconds).
type session struct {
	id         uuid.UUID
	app        *app
	registered time.Time // zero: not registered
	times      []int64
}

// row is one event, ready for COPY.
type row struct {
	id, app, session string
	category, name   string
	data             string
	ts, received     time.Time
}

// generator makes the data deterministically from a seed.
type generator struct {
	r          *rand.Rand
	apps       []*app
	appCum     []float64
	catCum     []float64
	nameCum    [][]float64
	begin, end time.Time
}

func newGenerator(seed uint64, apps int, begin, end time.Time) *generator {
	g := &generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), begin: begin, end: end}
	total := 0.0
	for i := range apps {
		a := &app{id: g.uuid4(), name: fmt.Sprintf("%s-%d", traffic.Sites[i%len(traffic.Sites)], i)}
		a.host = "www." + a.name + ".example"
		g.apps = append(g.apps, a)
		total += 1 / float64(i+1) // Zipf: the largest application is ~22% of 50
		g.appCum = append(g.appCum, total)
	}
	total = 0
	for _, c := range traffic.Categories {
		total += c.Weight
		g.catCum = append(g.catCum, total)
		var cum []float64
		t := 0.0
		for _, n := range c.Names {
			t += n.Weight
			cum = append(cum, t)
		}
		g.nameCum = append(g.nameCum, cum)
	}
	return g
}

func pick(r *rand.Rand, cum []float64) int {
	i, _ := slices.BinarySearch(cum, r.Float64()*cum[len(cum)-1])
	return min(i, len(cum)-1)
}

func (g *generator) uuid4() uuid.UUID {
	var u uuid.UUID
	binary.LittleEndian.PutUint64(u[:8], g.r.Uint64())
	binary.LittleEndian.PutUint64(u[8:], g.r.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// uuid7 is a UUIDv7 for time t, as the gateway makes them.
func (g *generator) uuid7(t time.Time) uuid.UUID {
	u := g.uuid4()
	ms := uint64(t.UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = u[6]&0x0f | 0x70
	return u
}

// sessionLengths returns lengths summing to exactly events.
func (g *generator) sessionLengths(events int) []int {
	var out []int
	for left := events; left > 0; {
		n := int(math.Exp(g.r.NormFloat64()*sessionSigma + math.Log(sessionMedian)))
		n = min(max(n, 1), sessionMax, left)
		out = append(out, n)
		left -= n
	}
	return out
}

// starts returns n sorted session start times (Unix microseconds) in
// [begin, end-3h], busier in the (UTC) afternoon than at night.
func (g *generator) starts(n int) []int64 {
	lo, hi := g.begin.UnixMicro(), g.end.Add(-3*time.Hour).UnixMicro()
	out := make([]int64, 0, n)
	for len(out) < n {
		t := lo + g.r.Int64N(hi-lo)
		hour := float64(t%(24*3600e6)) / 3600e6
		if g.r.Float64()*1.7 < 1+0.7*math.Sin(2*math.Pi*(hour-8)/24) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

func (g *generator) newSession(start int64, n int) *session {
	s := &session{id: g.uuid4(), app: g.apps[pick(g.r, g.appCum)], times: make([]int64, n)}
	last := g.end.UnixMicro() - 1
	t := start
	for i := range s.times {
		s.times[i] = min(t, last)
		t += int64(g.r.ExpFloat64() * float64(meanGap.Microseconds()))
	}
	if g.r.Float64() < registeredShare {
		s.registered = time.UnixMicro(start - 500_000 - g.r.Int64N(5_000_000)).UTC()
	}
	return s
}

// event makes the i-th event of s.
func (g *generator) event(s *session, i int) row {
	ts := time.UnixMicro(s.times[i]).UTC()
	ci, ni := 0, 0 // a session opens with a page view
	if i > 0 {
		ci = pick(g.r, g.catCum)
		ni = pick(g.r, g.nameCum[ci])
	}
	received := ts.Add(50*time.Millisecond + time.Duration(g.r.ExpFloat64()*float64(300*time.Millisecond))).Truncate(time.Microsecond)
	c := traffic.Categories[ci]
	return row{
		id: g.uuid7(received).String(), app: s.app.id.String(), session: s.id.String(),
		category: c.Name, name: c.Names[ni].Name,
		data: string(g.data(s, c.Name)), ts: ts, received: received,
	}
}

// data is an event's data object, about 300 bytes of JSON.
func (g *generator) data(s *session, category string) []byte {
	r := g.r
	b := make([]byte, 0, 384)
	b = append(b, `{"host":"`...)
	b = append(b, s.app.host...)
	b = append(b, `","path":"/`...)
	b = append(b, traffic.Sections[r.IntN(len(traffic.Sections))]...)
	b = append(b, "/item-"...)
	b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
	b = append(b, `","referrer":"`...)
	b = append(b, traffic.Referrers[r.IntN(len(traffic.Referrers))]...)
	ua := int(s.id[0]) % len(traffic.UserAgents) // stable within a session
	b = append(b, `","user_agent":"`...)
	b = append(b, traffic.UserAgents[ua]...)
	vp := traffic.Viewports[int(s.id[1])%len(traffic.Viewports)]
	b = append(b, `","viewport":{"w":`...)
	b = strconv.AppendInt(b, int64(vp[0]), 10)
	b = append(b, `,"h":`...)
	b = strconv.AppendInt(b, int64(vp[1]), 10)
	b = append(b, `},"locale":"`...)
	b = append(b, traffic.Locales[int(s.id[2])%len(traffic.Locales)]...)
	b = append(b, '"')
	switch category {
	case "form interaction":
		b = append(b, `,"form":"checkout","field":"field-`...)
		b = strconv.AppendInt(b, int64(r.IntN(12)), 10)
		b = append(b, '"')
	case "search":
		b = append(b, `,"query":"term `...)
		b = strconv.AppendInt(b, int64(r.IntN(5000)), 10)
		b = append(b, `","results":`...)
		b = strconv.AppendInt(b, int64(r.IntN(200)), 10)
	case "commerce":
		b = append(b, `,"sku":"SKU-`...)
		b = strconv.AppendInt(b, int64(r.IntN(1_000_000)), 10)
		b = append(b, `","price":`...)
		b = strconv.AppendFloat(b, float64(r.IntN(50000))/100, 'f', 2, 64)
	default:
		b = append(b, `,"element":"el-`...)
		b = strconv.AppendInt(b, int64(r.IntN(400)), 10)
		b = append(b, '"')
	}
	b = append(b, `,"scroll_depth":`...)
	b = strconv.AppendInt(b, int64(r.IntN(101)), 10)
	return append(b, '}')
}

// open is a session with events still to emit, ordered by its next one.
type open struct {
	s    *session
	next int
}

type openHeap []open

func (h openHeap) Len() int           { return len(h) }
func (h openHeap) Less(i, j int) bool { return h[i].s.times[h[i].next] < h[j].s.times[h[j].next] }
func (h openHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *openHeap) Push(x any)        { *h = append(*h, x.(open)) }
func (h *openHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// generate emits every event in timestamp order, the sessions interleaved
// as they would arrive, calling created for each session before its events;
// it stops early when emit returns false.
func (g *generator) generate(events int, emit func(row) bool, created func(*session)) {
	lengths := g.sessionLengths(events)
	starts := g.starts(len(lengths))
	h := &openHeap{}
	k := 0
	for k < len(starts) || h.Len() > 0 {
		if k < len(starts) && (h.Len() == 0 || starts[k] <= (*h)[0].s.times[(*h)[0].next]) {
			s := g.newSession(starts[k], lengths[k])
			created(s)
			heap.Push(h, open{s: s})
			k++
			continue
		}
		o := &(*h)[0]
		if !emit(g.event(o.s, o.next)) {
			return
		}
		o.next++
		if o.next == len(o.s.times) {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
}

package loadgen

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/lab/traffic"
)

// App is an application sending events: its write key and its share of
// the traffic.
type App struct {
	Key    string
	Weight float64
}

// Event is one generated event, ready to be written in the gateway's wire
// format.
type Event struct {
	ID        uuid.UUID // the client's own id, as pkg/client sets it
	App       int       // index into the generator's apps
	Session   uuid.UUID
	Category  string
	Name      string
	Data      []byte // a JSON object, ≈300 bytes
	Timestamp time.Time
}

// session is an open session: its id, the device it runs on and how many
// events it still has to send.
type session struct {
	id        uuid.UUID
	ua        string
	locale    string
	viewport  [2]int
	referrer  string
	remaining int
}

// Generator makes events from many applications' sessions. Sessions have
// log-normal lengths (median 20 events) and are replaced when they end,
// so the set of open sessions keeps changing. A Generator is not safe for
// concurrent use: give each worker its own (different seeds).
type Generator struct {
	rng      *rand.Rand
	apps     []App
	appCum   []float64
	sessions [][]session // open sessions per application
	hosts    []string
	now      func() time.Time
}

// NewGenerator returns a generator for apps with sessionsPerApp open
// sessions per application (at least 1), seeded with seed.
func NewGenerator(apps []App, sessionsPerApp int, seed uint64) *Generator {
	g := &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), apps: apps, now: time.Now}
	var cum float64
	for i, a := range apps {
		cum += a.Weight
		g.appCum = append(g.appCum, cum)
		g.hosts = append(g.hosts, "www."+traffic.Sites[i%len(traffic.Sites)]+strconv.Itoa(i)+".example.com")
		open := make([]session, max(sessionsPerApp, 1))
		for k := range open {
			open[k] = g.newSession()
		}
		g.sessions = append(g.sessions, open)
	}
	return g
}

func (g *Generator) newSession() session {
	n := int(math.Round(20 * math.Exp(0.8*g.rng.NormFloat64())))
	return session{
		id:        uuidFrom(g.rng),
		ua:        traffic.UserAgents[g.rng.IntN(len(traffic.UserAgents))],
		locale:    traffic.Locales[g.rng.IntN(len(traffic.Locales))],
		viewport:  traffic.Viewports[g.rng.IntN(len(traffic.Viewports))],
		referrer:  traffic.Referrers[g.rng.IntN(len(traffic.Referrers))],
		remaining: min(max(n, 1), 400),
	}
}

// uuidFrom is a random (v4) UUID from rng, cheaper than crypto/rand.
func uuidFrom(rng *rand.Rand) uuid.UUID {
	var u uuid.UUID
	a, b := rng.Uint64(), rng.Uint64()
	for i := range 8 {
		u[i], u[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// PickApp chooses an application by weight.
func (g *Generator) PickApp() int {
	x := g.rng.Float64() * g.appCum[len(g.appCum)-1]
	for i, c := range g.appCum {
		if x < c {
			return i
		}
	}
	return len(g.appCum) - 1
}

// Apps returns the applications.
func (g *Generator) Apps() []App { return g.apps }

// Next returns an event of an application chosen by weight.
func (g *Generator) Next() Event { return g.NextOf(g.PickApp()) }

// NextOf returns an event of application app, from one of its open
// sessions.
func (g *Generator) NextOf(app int) Event {
	open := g.sessions[app]
	k := g.rng.IntN(len(open))
	s := &open[k]
	e := Event{App: app, Session: s.id, Timestamp: g.now().UTC()}
	e.ID, _ = uuid.NewV7()
	cat := &traffic.Categories[pick(g.rng, len(traffic.Categories), func(i int) float64 { return traffic.Categories[i].Weight })]
	e.Category = cat.Name
	e.Name = cat.Names[pick(g.rng, len(cat.Names), func(i int) float64 { return cat.Names[i].Weight })].Name
	e.Data = g.data(app, s, e.Category)
	if s.remaining--; s.remaining <= 0 {
		open[k] = g.newSession()
	}
	return e
}

// Batch returns n events of one application chosen by weight, from its
// open sessions: what a client library (or a server-side collector) sends
// in one request.
func (g *Generator) Batch(n int) []Event {
	app := g.PickApp()
	out := make([]Event, n)
	for i := range out {
		out[i] = g.NextOf(app)
	}
	return out
}

func pick(rng *rand.Rand, n int, weight func(int) float64) int {
	var total float64
	for i := range n {
		total += weight(i)
	}
	x := rng.Float64() * total
	for i := range n {
		if x -= weight(i); x < 0 {
			return i
		}
	}
	return n - 1
}

// data builds the event's data object: the page and device, plus a few
// fields depending on the category; ≈300 bytes.
func (g *Generator) data(app int, s *session, category string) []byte {
	b := make([]byte, 0, 384)
	b = append(b, `{"host":`...)
	b = strconv.AppendQuote(b, g.hosts[app])
	b = append(b, `,"path":"/`...)
	b = append(b, traffic.Sections[g.rng.IntN(len(traffic.Sections))]...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(g.rng.IntN(100000)), 10)
	b = append(b, `","referrer":`...)
	b = strconv.AppendQuote(b, s.referrer)
	b = append(b, `,"user_agent":`...)
	b = strconv.AppendQuote(b, s.ua)
	b = append(b, `,"viewport":{"w":`...)
	b = strconv.AppendInt(b, int64(s.viewport[0]), 10)
	b = append(b, `,"h":`...)
	b = strconv.AppendInt(b, int64(s.viewport[1]), 10)
	b = append(b, `},"locale":`...)
	b = strconv.AppendQuote(b, s.locale)
	switch category {
	case "page interaction":
		b = append(b, `,"element":"`...)
		b = append(b, []string{"hero banner", "chat bubble", "nav menu", "footer link", "cta button"}[g.rng.IntN(5)]...)
		b = append(b, `","scroll_depth":`...)
		b = strconv.AppendInt(b, int64(g.rng.IntN(101)), 10)
	case "form interaction":
		b = append(b, `,"form":"`...)
		b = append(b, []string{"signup", "contact", "newsletter", "checkout"}[g.rng.IntN(4)]...)
		b = append(b, `","field":"`...)
		b = append(b, []string{"email", "first_name", "last_name", "phone", "zip"}[g.rng.IntN(5)]...)
		b = append(b, '"')
	case "search":
		b = append(b, `,"query":"`...)
		b = append(b, []string{"red shoes", "cheap flights", "best laptop 2026", "pizza near me", "weather"}[g.rng.IntN(5)]...)
		b = append(b, `","results":`...)
		b = strconv.AppendInt(b, int64(g.rng.IntN(500)), 10)
	case "commerce":
		b = append(b, `,"sku":"SKU-`...)
		b = strconv.AppendInt(b, int64(g.rng.IntN(1000000)), 10)
		b = append(b, `","price":`...)
		b = strconv.AppendFloat(b, float64(g.rng.IntN(100000))/100, 'f', 2, 64)
		b = append(b, `,"currency":"USD"`...)
	default:
		b = append(b, `,"value":`...)
		b = strconv.AppendInt(b, int64(g.rng.IntN(10000)), 10)
	}
	return append(b, '}')
}

// AppendJSON appends the event as a client sends it: one JSON object with
// its own id, the session, category, name, data and timestamp.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, e.ID.String()...)
	b = append(b, `","session_id":"`...)
	b = append(b, e.Session.String()...)
	b = append(b, `","category":`...)
	b = strconv.AppendQuote(b, e.Category)
	b = append(b, `,"name":`...)
	b = strconv.AppendQuote(b, e.Name)
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	b = append(b, `,"timestamp":"`...)
	b = e.Timestamp.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	return append(b, `"}`...)
}

// Single is the body of a request carrying one event.
func Single(e Event) []byte { return e.AppendJSON(make([]byte, 0, 512)) }

// Array is the body of a request carrying events as a JSON array.
func Array(events []Event) []byte {
	b := make([]byte, 0, 512*len(events))
	b = append(b, '[')
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = events[i].AppendJSON(b)
	}
	return append(b, ']')
}

// NDJSON is the body of an NDJSON stream carrying events, one per line
// (Content-Type: application/x-ndjson).
func NDJSON(events []Event) []byte {
	b := make([]byte, 0, 512*len(events))
	for i := range events {
		b = events[i].AppendJSON(b)
		b = append(b, '\n')
	}
	return b
}

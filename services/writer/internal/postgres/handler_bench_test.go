package postgres_test

// The writer's real per-batch handler, kafkaapi.Events, in BenchmarkWriter:
// envelopes decoded from their Kafka bytes, then the domain's calls
// (Erased, Sessions, StrictSessions, InsertEvents, MarkReplayed). It lives
// in the external test package because the handlers import the domain,
// which this package implements.

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/writer/internal/kafkaapi"
	"github.com/the-eye/eye/services/writer/internal/persist"
	"github.com/the-eye/eye/services/writer/internal/postgres"
)

func init() {
	for _, c := range []struct {
		name           string
		size, parallel int
	}{{"kafkaapi.Events/b1000", 1000, 1}, {"kafkaapi.Events/b5000", 5000, 1}, {"kafkaapi.Events_x2/b1000", 1000, 2}} {
		postgres.AddBenchCase(c.name, c.size, c.parallel, encodeBacklog, func(ctx context.Context, db *sqlx.DB, batch []event.Event) error {
			st, err := postgres.New(db) // the constructors do no I/O
			if err != nil {
				return err
			}
			w, err := persist.New(st)
			if err != nil {
				return err
			}
			h, err := kafkaapi.New(w, discard{}, contract.NewTopics(""))
			if err != nil {
				return err
			}
			return h.Events(ctx, messagesOf(batch))
		})
	}
}

var (
	encodeOnce sync.Once
	encoded    map[[16]byte]contract.Message
)

// encodeBacklog encodes the backlog as the events topic carries it, once.
func encodeBacklog() {
	encodeOnce.Do(func() {
		all := postgres.BenchBacklog()
		encoded = make(map[[16]byte]contract.Message, len(all))
		for _, e := range all {
			m, err := contract.Encode("events", e.SessionID.String(), &contract.Event{
				ID: e.ID, AppID: e.AppID, SessionID: e.SessionID, Category: e.Category, Name: e.Name,
				Data: e.Data, Timestamp: e.Timestamp, ClientTimestamp: e.ClientTimestamp, ReceivedAt: e.ReceivedAt,
			})
			if err != nil {
				panic(err)
			}
			encoded[e.ID] = m
		}
	})
}

// messagesOf returns batch as the events topic carries it.
func messagesOf(batch []event.Event) []contract.Message {
	out := make([]contract.Message, len(batch))
	for i, e := range batch {
		out[i] = encoded[e.ID]
	}
	return out
}

// BenchmarkDecodeEvent is the CPU kafkaapi.Events spends per event before any
// database work: contract.Decode (which unmarshals the envelope twice, for
// its header and then for its body) against a single json.Unmarshal.
func BenchmarkDecodeEvent(b *testing.B) {
	encodeBacklog()
	all := postgres.BenchBacklog()
	msgs := messagesOf(all[:1000])
	b.Run("contract.Decode", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var e contract.Event
			if err := contract.Decode(msgs[i%len(msgs)].Value, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var e contract.Event
			if err := json.Unmarshal(msgs[i%len(msgs)].Value, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// discard is a kafkaapi.Publisher for benchmarks: it drops what it is given.
type discard struct{}

func (discard) Publish(context.Context, ...contract.Message) error { return nil }

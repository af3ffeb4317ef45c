package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
)

// discard is a Publisher that drops what it is given: the benchmarks
// measure the gateway's own work per event, not the broker's.
type discard struct{}

func (discard) Publish(context.Context, ...contract.Message) error { return nil }

// benchEvent is a realistic event document of ≈ 330 bytes.
func benchEvent(i int) string {
	return fmt.Sprintf(`{"id":"%s","session_id":"%s","category":"page interaction","name":"cta click","timestamp":"2026-11-26T10:00:%02d.123Z",`+
		`"data":{"host":"www.example.com","path":"/pricing/enterprise","referrer":"https://www.google.com/search?q=eye","element":"button#signup.primary","viewport":{"w":1440,"h":900},"value":%d}}`,
		uuid.Must(uuid.NewV7()), uuid.New(), i%60, i)
}

// BenchmarkIngest: the gateway's CPU per event for one event per request
// and for 100-event arrays (go test -bench Ingest -benchmem ./internal/ingest).
func BenchmarkIngest(b *testing.B) {
	s, err := NewService(discard{}, &memSessions{}, topics, Limits{MaxEvents: 5000, MaxStreamEvents: 1_000_000, MaxEventBytes: 32 << 10, MaxDepth: 32})
	if err != nil {
		b.Fatal(err)
	}
	app := uuid.New()
	single := []byte(benchEvent(1))
	docs := make([]string, 100)
	for i := range docs {
		docs[i] = benchEvent(i)
	}
	batch := []byte("[" + strings.Join(docs, ",") + "]")
	for _, c := range []struct {
		name   string
		body   []byte
		events int
	}{{"single", single, 1}, {"array100", batch, 100}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if _, err := s.Ingest(context.Background(), app, c.body, admitAll); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.events)/1000, "µs/event")
		})
	}
}

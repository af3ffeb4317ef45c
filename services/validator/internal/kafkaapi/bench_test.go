package kafkaapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/validator/internal/validate"
)

// discard is a Publisher that drops what it is given: the benchmark
// measures the validator's own work per event, not the broker's.
type discard struct{}

func (discard) Publish(context.Context, ...contract.Message) error { return nil }

// BenchmarkHandle: the validator's CPU per event for a 500-record batch of
// realistic raw events, no schemas (go test -bench Handle -benchmem ./internal/kafkaapi).
func BenchmarkHandle(b *testing.B) {
	r, err := New(validate.New(event.DefaultRules()), topics, discard{})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]contract.Message, 500)
	for i := range batch {
		sid := uuid.NewString()
		doc := fmt.Sprintf(`{"id":"%s","session_id":"%s","category":"page interaction","name":"cta click","timestamp":"2026-11-26T10:00:%02d.123Z",`+
			`"data":{"host":"www.example.com","path":"/pricing/enterprise","referrer":"https://www.google.com/search?q=eye","element":"button#signup.primary","viewport":{"w":1440,"h":900},"value":%d}}`,
			uuid.Must(uuid.NewV7()), sid, i%60, i)
		m, err := contract.Encode(topics.Raw, sid, &contract.RawEvent{
			EventID: uuid.Must(uuid.NewV7()), AppID: uuid.New(), ReceivedAt: time.Now().UTC(), Payload: contract.NewPayload([]byte(doc)),
		})
		if err != nil {
			b.Fatal(err)
		}
		batch[i] = m
	}
	for b.Loop() {
		if err := r.Handle(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch))/1000, "µs/event")
}

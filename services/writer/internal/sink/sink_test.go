package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
	"github.com/the-eye/eye/services/writer/internal/store"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// recorder is a Publisher that keeps what it was given.
type recorder struct {
	mu   sync.Mutex
	msgs []contract.Message
}

func (r *recorder) Publish(_ context.Context, msgs ...contract.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msgs...)
	return nil
}

// A batch large enough to be decoded in parallel, with undecodable records
// among the events: every event is stored, every undecodable record becomes
// an invalid_envelope error record and a dead letter, each about its own
// message.
func TestEventsBatchWithUndecodableRecords(t *testing.T) {
	ctx := context.Background()
	db, err := pg.Open(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := store.New(db)
	if err != nil {
		t.Fatal(err)
	}
	pub := &recorder{}
	s, err := New(st, pub, "dead")
	if err != nil {
		t.Fatal(err)
	}

	const n = 2*decodeParallelMin + 7
	app, sessions := uuid.New(), []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	now := event.Canonical(time.Now())
	var (
		batch   []contract.Message
		stored  []uuid.UUID
		garbage = map[string]bool{}
	)
	for i := range n {
		if i%97 == 5 {
			v := fmt.Sprintf(`{"v":1,"type":"event","id":"not-a-uuid-%d"}`, i)
			garbage[v] = true
			batch = append(batch, contract.Message{Topic: "events", Partition: 0, Offset: int64(i), Value: []byte(v)})
			continue
		}
		id := uuid.Must(uuid.NewV7())
		m, err := contract.Encode("events", "", &contract.Event{
			ID: id, AppID: app, SessionID: sessions[i%len(sessions)], Category: "page interaction", Name: "pageview",
			Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), Timestamp: now, ClientTimestamp: now, ReceivedAt: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		m.Offset = int64(i)
		batch = append(batch, m)
		stored = append(stored, id)
	}
	if err := s.Events(ctx, batch); err != nil {
		t.Fatal(err)
	}

	var count int
	if err := db.Get(&count, `SELECT count(*) FROM events WHERE app_id = $1`, app); err != nil {
		t.Fatal(err)
	}
	if count != len(stored) {
		t.Fatalf("%d events stored, want %d", count, len(stored))
	}
	var data json.RawMessage
	if err := db.Get(&data, `SELECT data FROM events WHERE id = $1`, stored[len(stored)-1]); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"i": %d}`, n-1); string(data) != want {
		t.Fatalf("last event's data %s, want %s: events were paired with the wrong messages", data, want)
	}

	var payloads [][]byte
	if err := db.Select(&payloads, `SELECT payload FROM errors WHERE stage = 'writer' AND 'invalid_envelope' = ANY(reason_codes)`); err != nil {
		t.Fatal(err)
	}
	if len(payloads) != len(garbage) {
		t.Fatalf("%d error records, want %d", len(payloads), len(garbage))
	}
	for _, p := range payloads {
		if !garbage[string(p)] {
			t.Fatalf("error record about %q, which is not one of the undecodable records", p)
		}
	}
	if len(pub.msgs) != len(garbage) {
		t.Fatalf("%d dead letters, want %d", len(pub.msgs), len(garbage))
	}
	for _, m := range pub.msgs {
		if m.Topic != "dead" || !garbage[string(m.Value)] || !bytes.HasPrefix([]byte(m.Headers[contract.HeaderDLQSource]), []byte("events/0/")) {
			t.Fatalf("dead letter %+v", m)
		}
	}
}

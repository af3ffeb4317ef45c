package kafkaapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
	"github.com/the-eye/eye/services/writer/internal/persist"
	"github.com/the-eye/eye/services/writer/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

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

// The handlers with the real domain and storage, on a batch large enough
// to be decoded in parallel, with undecodable records among the events:
// every event is stored, every undecodable record becomes a dead letter and
// an invalid_envelope error record on the errors topic, each about its own
// message. An event the writer refuses, for its session, is published as
// an error record keyed by its session.
func TestEventsBatchWithUndecodableRecords(t *testing.T) {
	ctx := context.Background()
	db, err := pg.Open(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := postgres.New(db)
	if err != nil {
		t.Fatal(err)
	}
	w, err := persist.New(st)
	if err != nil {
		t.Fatal(err)
	}
	pub := &recorder{}
	topics := contract.NewTopics("t.")
	s, err := New(w, pub, topics)
	if err != nil {
		t.Fatal(err)
	}

	const n = 2*decodeParallelMin + 7
	app, sessions := uuid.New(), []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	// The third session belongs to another application: its events are
	// refused as session_conflict.
	db.MustExec(`INSERT INTO sessions (id, app_id, created_at) VALUES ($1, $2, now())`, sessions[2], uuid.New())
	now := event.Canonical(time.Now())
	var (
		batch      []contract.Message
		stored     []uuid.UUID
		lastStored int
		conflict   = map[uuid.UUID]bool{}
		garbage    = map[string]bool{}
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
		if i%len(sessions) == 2 {
			conflict[id] = true
		} else {
			stored, lastStored = append(stored, id), i
		}
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
	if want := fmt.Sprintf(`{"i": %d}`, lastStored); string(data) != want {
		t.Fatalf("last event's data %s, want %s: events were paired with the wrong messages", data, want)
	}

	if n := len(pub.msgs); n != 2*len(garbage)+len(conflict) {
		t.Fatalf("%d messages published, want %d dead letters and %d error records", n, len(garbage), len(garbage)+len(conflict))
	}
	for _, m := range pub.msgs {
		switch m.Topic {
		case topics.DeadLetter:
			if !garbage[string(m.Value)] || !strings.HasPrefix(m.Headers[contract.HeaderDLQSource], "events/0/") {
				t.Fatalf("dead letter %+v", m)
			}
		case topics.Errors:
			var e contract.Error
			if err := contract.Decode(m.Value, &e); err != nil {
				t.Fatal(err)
			}
			payload, _ := e.Payload.Bytes()
			switch code := e.Reasons[0].Code; {
			case e.Stage != contract.StageWriter:
				t.Fatalf("error record of stage %s", e.Stage)
			case code == event.CodeInvalidEnvelope:
				if !garbage[string(payload)] || m.Key != nil {
					t.Fatalf("invalid_envelope record about %q, key %q", payload, m.Key)
				}
			case code == event.CodeSessionOwner:
				if !conflict[e.ID] || string(m.Key) != sessions[2].String() {
					t.Fatalf("session_conflict record %s, key %q", e.ID, m.Key)
				}
			default:
				t.Fatalf("unexpected error record %+v", e)
			}
		default:
			t.Fatalf("published to %s", m.Topic)
		}
	}
}

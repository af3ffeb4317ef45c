package postgres

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
	"github.com/the-eye/eye/services/writer/internal/persist"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

func newStore(t *testing.T) (*Store, *sqlx.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := pg.Open(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := New(db)
	if err != nil {
		t.Fatal(err)
	}
	return st, db
}

// testApp owns the events newEvent makes.
var testApp = uuid.New()

func newEvent(session uuid.UUID, ts time.Time, data string) event.Event {
	return event.Event{
		ID: uuid.Must(uuid.NewV7()), AppID: testApp, SessionID: session, Category: "page interaction", Name: "pageview",
		Data: json.RawMessage(data), Timestamp: ts, ReceivedAt: event.Canonical(time.Now()),
	}
}

type sessionAgg struct {
	Count int64     `db:"event_count"`
	First time.Time `db:"first_event_at"`
	Last  time.Time `db:"last_event_at"`
}

func aggOf(t *testing.T, db *sqlx.DB, id uuid.UUID) sessionAgg {
	t.Helper()
	var a sessionAgg
	if err := db.Get(&a, `SELECT event_count, first_event_at, last_event_at FROM sessions WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestInsertEventsIsIdempotent(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	session := uuid.New()
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := []event.Event{
		newEvent(session, t0.Add(time.Minute), `{"a":1}`),
		newEvent(session, t0, `{"a":2}`),
		newEvent(session, t0.Add(2*time.Minute), `{"a":3}`),
	}
	for range 3 { // redelivery of the same batch
		if rej, err := st.InsertEvents(ctx, batch); err != nil || len(rej) != 0 {
			t.Fatalf("insert: %v %v", rej, err)
		}
	}
	// A batch repeating one event of the previous one in itself.
	if _, err := st.InsertEvents(ctx, []event.Event{batch[0], batch[0]}); err != nil {
		t.Fatal(err)
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM events WHERE session_id = $1`, session)
	a := aggOf(t, db, session)
	if n != 3 || a.Count != 3 || !a.First.Equal(t0) || !a.Last.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("rows %d, session %+v", n, a)
	}
}

func TestConcurrentWritersCountEveryEventOnce(t *testing.T) { concurrentWriters(t, 3, 30) }

// Batches large enough to be split into lanes.
func TestConcurrentWritersWithLanesCountEveryEventOnce(t *testing.T) { concurrentWriters(t, 20, 600) }

// concurrentWriters has 4 writers insert batches of perBatch events over
// nSessions sessions, each redelivering its neighbour's batches meanwhile,
// and checks the sessions count every event once.
func concurrentWriters(t *testing.T, nSessions, perBatch int) {
	st, db := newStore(t)
	ctx := context.Background()
	var sessions []uuid.UUID
	for range nSessions {
		sessions = append(sessions, uuid.New())
	}
	const writers, batches = 4, 10
	var all []event.Event
	for range writers * batches * perBatch {
		all = append(all, newEvent(sessions[len(all)%len(sessions)], time.Date(2021, 1, 1, 0, 0, len(all), 0, time.UTC), `{"k":"v"}`))
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer inserts its share, and redelivers its neighbour's.
			for b := range batches {
				own := all[(w*batches+b)*perBatch : (w*batches+b+1)*perBatch]
				nb := ((w+1)%writers*batches + b) * perBatch
				if _, err := st.InsertEvents(ctx, own); err != nil {
					errs <- err
					return
				}
				if _, err := st.InsertEvents(ctx, all[nb:nb+perBatch]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var total int64
	for _, s := range sessions {
		total += aggOf(t, db, s).Count
	}
	if total != int64(len(all)) {
		t.Fatalf("sessions count %d events, want %d", total, len(all))
	}
}

func TestRefusedRowsAreReturnedNotStalled(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	session := uuid.New()
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	good1, bad, good2 := newEvent(session, t0, `{"a":1}`), newEvent(session, t0, `{"a":"nul\u0000here"}`), newEvent(session, t0, `{"a":2}`)
	rej, err := st.InsertEvents(ctx, []event.Event{good1, bad, good2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 1 || rej[0].Event.ID != bad.ID {
		t.Fatalf("rejected %+v", rej)
	}
	if a := aggOf(t, db, session); a.Count != 2 {
		t.Fatalf("session count %d, want 2", a.Count)
	}
}

func TestPartlyRedeliveredBatchStoresOnlyTheNewEvents(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	session := uuid.New()
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []event.Event
	for i := range 20 {
		all = append(all, newEvent(session, t0.Add(time.Duration(i)*time.Minute), `{"a":1}`))
	}
	if _, err := st.InsertEvents(ctx, all[5:10]); err != nil {
		t.Fatal(err)
	}
	// The COPY of this batch meets stored ids and falls back to ON CONFLICT.
	if rej, err := st.InsertEvents(ctx, all); err != nil || len(rej) != 0 {
		t.Fatalf("insert: %v %v", rej, err)
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM events WHERE session_id = $1`, session)
	a := aggOf(t, db, session)
	if n != 20 || a.Count != 20 || !a.First.Equal(t0) || !a.Last.Equal(t0.Add(19*time.Minute)) {
		t.Fatalf("rows %d, session %+v", n, a)
	}
}

// A batch large enough to be split into lanes, with a refused row in it:
// every other event is stored and counted once, the refused one comes back,
// and a redelivery changes nothing.
func TestLargeBatchWithARefusedRow(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	sessions := make([]uuid.UUID, 40)
	for i := range sessions {
		sessions[i] = uuid.New()
	}
	var batch []event.Event
	want := map[uuid.UUID]sessionAgg{}
	for i := range 3000 {
		s, ts := sessions[i%len(sessions)], t0.Add(time.Duration(i)*time.Second)
		batch = append(batch, newEvent(s, ts, `{"a":1}`))
		a := want[s]
		if a.Count == 0 {
			a.First = ts
		}
		a.Count, a.Last = a.Count+1, ts
		want[s] = a
	}
	bad := newEvent(sessions[0], t0, `{"a":"nul\u0000here"}`)
	batch = append(batch[:1234], append([]event.Event{bad}, batch[1234:]...)...)
	for range 2 {
		rej, err := st.InsertEvents(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(rej) != 1 || rej[0].Event.ID != bad.ID {
			t.Fatalf("rejected %d: %+v", len(rej), rej)
		}
		for _, s := range sessions {
			if got := aggOf(t, db, s); got.Count != want[s].Count || !got.First.Equal(want[s].First) || !got.Last.Equal(want[s].Last) {
				t.Fatalf("session %s: %+v, want %+v", s, got, want[s])
			}
		}
	}
	var n int
	db.Get(&n, `SELECT count(*) FROM events`)
	if n != 3000 {
		t.Fatalf("%d events stored, want 3000", n)
	}
}

func TestInsertErrorsKeepsPayloadBytesAndSurvivesNUL(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	payload := []byte{0xff, 0x00, '{'}
	rec := contract.Error{
		ID: uuid.New(), AppID: uuid.New(), Stage: contract.StageValidator,
		Reasons:    event.Reasons{{Code: event.CodeInvalidSessionID, Field: "/session_id", Message: "session id \"\x00\" is not a UUID"}},
		Payload:    contract.NewPayload(payload),
		ReceivedAt: time.Now(), DetectedAt: time.Now(),
	}
	for range 2 {
		if err := st.InsertErrors(ctx, []contract.Error{rec}); err != nil {
			t.Fatal(err)
		}
	}
	var row struct {
		Payload []byte `db:"payload"`
		Codes   string `db:"codes"`
		N       int    `db:"n"`
	}
	if err := db.Get(&row, `SELECT payload, array_to_string(reason_codes, ',') AS codes, (SELECT count(*) FROM errors) AS n FROM errors WHERE id = $1`, rec.ID); err != nil {
		t.Fatal(err)
	}
	if string(row.Payload) != string(payload) || row.Codes != "invalid_session_id" || row.N != 1 {
		t.Fatalf("stored %+v", row)
	}
}

// TestSessionsAndStrictSessions: the facts the domain's session verdicts
// are made of, read through the tables' owners.
func TestSessionsAndStrictSessions(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	strictApp, laxApp, missingApp := uuid.New(), uuid.New(), uuid.New()
	for _, a := range []struct {
		id     uuid.UUID
		strict bool
	}{{strictApp, true}, {laxApp, false}} {
		if _, err := db.Exec(`INSERT INTO applications (id, name, strict_sessions) VALUES ($1, 'a', $2)`, a.id, a.strict); err != nil {
			t.Fatal(err)
		}
	}
	registered, unregistered, missing := uuid.New(), uuid.New(), uuid.New()
	db.MustExec(`INSERT INTO sessions (id, app_id, created_at, registered_at) VALUES ($1, $2, now(), now())`, registered, strictApp)
	db.MustExec(`INSERT INTO sessions (id, app_id, created_at) VALUES ($1, $2, now())`, unregistered, laxApp)
	known, err := st.Sessions(ctx, []uuid.UUID{registered, unregistered, missing})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uuid.UUID]persist.Session{registered: {AppID: strictApp, Registered: true}, unregistered: {AppID: laxApp}}
	if !maps.Equal(known, want) {
		t.Fatalf("sessions %v, want %v", known, want)
	}
	strict, err := st.StrictSessions(ctx, []uuid.UUID{strictApp, laxApp, missingApp})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(strict, map[uuid.UUID]bool{strictApp: true}) {
		t.Fatalf("strict sessions %v", strict)
	}
}

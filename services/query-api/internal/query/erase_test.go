package query

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
)

// steps records, in order, what an erasure did: "publish" and "erase".
type steps struct{ done []string }

// memErasures is in-memory erasure storage writing into steps.
type memErasures struct {
	*steps
	app    uuid.UUID
	erased []contract.Tombstone
}

func (m *memErasures) SessionApp(context.Context, uuid.UUID) (uuid.UUID, error) { return m.app, nil }

func (m *memErasures) Erase(_ context.Context, _ Actor, t contract.Tombstone) (Erasure, error) {
	m.done = append(m.done, "erase")
	m.erased = append(m.erased, t)
	return Erasure{SessionID: t.SessionID, TombstoneID: t.ID, Session: true}, nil
}

// stepPublisher publishes into steps, or fails.
type stepPublisher struct {
	*steps
	fail error
	msgs []contract.Message
}

func (p *stepPublisher) Publish(_ context.Context, msgs ...contract.Message) error {
	if p.fail != nil {
		return p.fail
	}
	p.done = append(p.done, "publish")
	p.msgs = append(p.msgs, msgs...)
	return nil
}

// TestEraseAnnouncesBeforeDeleting: the tombstone is published (keyed by
// the session, naming its application) before anything is deleted, and
// when the publication fails nothing is.
func TestEraseAnnouncesBeforeDeleting(t *testing.T) {
	ctx := context.Background()
	st := &steps{}
	store := &memErasures{steps: st, app: uuid.New()}
	pub := &stepPublisher{steps: st, fail: errors.New("kafka is down")}
	e, err := NewEraser(store, pub, "eye.erasures.v1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	session := uuid.New()
	if _, err := e.Erase(ctx, Actor{}, session); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("erasure without Kafka: %v", err)
	}
	if len(st.done) != 0 || len(store.erased) != 0 {
		t.Fatalf("an unpublished erasure did %v", st.done)
	}
	pub.fail = nil
	got, err := e.Erase(ctx, Actor{}, session)
	if err != nil || len(st.done) != 2 || st.done[0] != "publish" || st.done[1] != "erase" {
		t.Fatalf("erasure: %v, steps %v", err, st.done)
	}
	var tomb contract.Tombstone
	if err := contract.Decode(pub.msgs[0].Value, &tomb); err != nil {
		t.Fatal(err)
	}
	if pub.msgs[0].Topic != "eye.erasures.v1" || string(pub.msgs[0].Key) != session.String() || tomb.SessionID != session ||
		tomb.AppID != store.app || tomb.ID != got.TombstoneID || store.erased[0] != tomb {
		t.Fatalf("tombstone %+v on %s/%s, erased %+v, answer %+v", tomb, pub.msgs[0].Topic, pub.msgs[0].Key, store.erased, got)
	}
}

package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
)

// Publisher publishes messages, returning nil only once Kafka acknowledged
// every one of them (kafkax.Producer).
type Publisher interface {
	Publish(ctx context.Context, msgs ...contract.Message) error
}

// Erasures is the storage erasing sessions needs.
type Erasures interface {
	// SessionApp is the application of session id, from the first place
	// that knows it (the session, its events, its error records); uuid.Nil
	// when none does.
	SessionApp(ctx context.Context, id uuid.UUID) (uuid.UUID, error)
	// Erase deletes the session t names — its events, its error records,
	// the audit of its events and the session row — in one transaction
	// that records the erasure (t, by, the counts).
	Erase(ctx context.Context, by Actor, t contract.Tombstone) (Erasure, error)
}

// Eraser erases sessions: a tombstone on the erasures topic, then the
// session's rows in storage.
type Eraser struct {
	store   Erasures
	pub     Publisher
	topic   string
	timeout time.Duration // for the publication
	now     func() time.Time
}

// NewEraser returns an Eraser that publishes tombstones on topic through
// pub, waiting at most publishTimeout for the acknowledgement.
func NewEraser(store Erasures, pub Publisher, topic string, publishTimeout time.Duration) (*Eraser, error) {
	switch {
	case store == nil || pub == nil:
		return nil, errors.New("query: eraser needs a store and a publisher")
	case topic == "":
		return nil, errors.New("query: eraser needs a topic")
	case publishTimeout <= 0:
		return nil, errors.New("query: publish timeout must be positive")
	}
	return &Eraser{store: store, pub: pub, topic: topic, timeout: publishTimeout, now: time.Now}, nil
}

// Erase removes session id — its events, its error records, the audit of
// its events and the session row — and records who did it as by.
//
// The tombstone is published first, and the rows are deleted only once
// Kafka acknowledged it: an erasure that returns nil has been announced to
// the topics' consumers and is done in storage. If the publication fails
// nothing is deleted (ErrNotPublished); if the deletion fails after it, the
// caller retries, and the second tombstone is harmless. The other order
// could delete the rows and then lose the tombstone, leaving copies
// downstream that nobody is told to erase. A session nothing is known of is
// still announced: consumers may hold records that never reached Postgres.
func (e *Eraser) Erase(ctx context.Context, by Actor, id uuid.UUID) (Erasure, error) {
	app, err := e.store.SessionApp(ctx, id)
	if err != nil {
		return Erasure{}, err
	}
	tid, err := uuid.NewV7()
	if err != nil {
		return Erasure{}, fmt.Errorf("tombstone id: %w", err)
	}
	t := contract.Tombstone{ID: tid, SessionID: id, AppID: app, RequestedAt: e.now().UTC().Truncate(time.Microsecond)}
	msg, err := contract.Encode(e.topic, id.String(), &t)
	if err != nil {
		return Erasure{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := e.pub.Publish(pctx, msg); err != nil {
		return Erasure{}, fmt.Errorf("%w: %w", ErrNotPublished, err)
	}
	return e.store.Erase(ctx, by, t)
}

package faults

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/lab/stack"
)

// StoredUpTo counts the events stored with a sequence number at or below
// marks[k] in session k. Event timestamps grow with the sequence number,
// so this is a range scan of the (session_id, timestamp, id) index.
func (p *pipeline) StoredUpTo(ctx context.Context, l *load, marks []int64) (int64, error) {
	sids := make([]string, len(marks))
	upto := make([]string, len(marks))
	for k, m := range marks {
		sids[k] = l.sessions[k].id.String()
		upto[k] = l.Timestamp(m).Format(time.RFC3339Nano)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int64
	err := p.db.GetContext(ctx, &n, `
		SELECT count(*) FROM events e
		JOIN unnest($1::uuid[], $2::timestamptz[]) AS w(sid, upto) ON e.session_id = w.sid AND e."timestamp" <= w.upto`,
		pq.Array(sids), pq.Array(upto))
	return n, err
}

// WaitStored polls until every event acknowledged up to marks is stored and
// returns how long that took from since.
func (p *pipeline) WaitStored(ctx context.Context, l *load, marks []int64, since time.Time, timeout time.Duration) (time.Duration, error) {
	var want int64
	for _, m := range marks {
		want += m
	}
	var got int64
	err := stack.Poll(ctx, timeout, func() bool {
		n, err := p.StoredUpTo(ctx, l, marks)
		if err == nil {
			got = n
		}
		return err == nil && n == want
	})
	if err != nil {
		return time.Since(since), fmt.Errorf("%d of %d acknowledged events stored: %w", got, want, err)
	}
	return time.Since(since), nil
}

// verdict is what a scenario's checks found.
type verdict struct {
	Acked         int64 // events that got a 202
	Unacked       int64 // sent but never acknowledged (abandoned at the end)
	UnackedStored int64 // of those, stored anyway (allowed: at most once)
	Lost          int64 // acknowledged, not stored
	Duplicated    int64 // extra rows for one (session, seq)
	IDMismatch    int64 // stored under another id than the client's
	Phantom       int64 // rows the load never sent
	CountMismatch int64 // sessions whose event_count differs from their rows
	ErrorRecords  int64 // error records (the load sends only valid events)
	ErrorReasons  []string

	RawOutOfOrder      int64 // first copies on the raw topic out of sequence
	ValidOutOfOrder    int64 // first copies on the valid-events topic out of sequence
	ReceivedOutOfOrder int64 // stored received_at decreasing along a session's sequence
	RawRecords         int64 // records on the raw topic
	ValidRecords       int64 // records on the valid-events topic
	RawCopies          int64 // raw records beyond the first of their event (client retries)
	Problems           []string
}

// OutOfOrder is the total of the order violations.
func (v verdict) OutOfOrder() int64 {
	return v.RawOutOfOrder + v.ValidOutOfOrder + v.ReceivedOutOfOrder
}

// Sound reports whether nothing acknowledged was lost, duplicated,
// altered or reordered.
func (v verdict) Sound() bool {
	return v.Lost == 0 && v.Duplicated == 0 && v.IDMismatch == 0 && v.Phantom == 0 && v.CountMismatch == 0 &&
		v.ErrorRecords == 0 && v.OutOfOrder() == 0
}

func (v *verdict) problem(format string, args ...any) {
	if len(v.Problems) < 15 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// ref locates an event: session index and sequence number.
type ref struct {
	s   int
	seq int64
}

// Verify checks the stored events, the session aggregates, the error
// records and the order of both topics against what the load sent. Call it
// after the load stopped and the pipeline drained.
func (p *pipeline) Verify(ctx context.Context, l *load) (verdict, error) {
	var v verdict
	bySession := map[uuid.UUID]int{}
	byID := map[uuid.UUID]ref{}
	for k, s := range l.sessions {
		bySession[s.id] = k
		sent := s.sent.Load()
		for seq := int64(1); seq <= sent; seq++ {
			byID[s.ids[seq-1]] = ref{k, seq}
		}
		v.Acked += s.acked.Load()
		v.Unacked += sent - s.acked.Load()
	}

	// Postgres: one row per (session, seq), under the client's id.
	rows, err := p.db.QueryxContext(ctx, `SELECT id, session_id, (data->>'seq')::bigint, received_at FROM events`)
	if err != nil {
		return v, err
	}
	count := map[ref]int64{}
	received := map[ref]time.Time{}
	perSession := map[uuid.UUID]int64{}
	for rows.Next() {
		var (
			id, sid uuid.UUID
			seq     *int64
			at      time.Time
		)
		if err := rows.Scan(&id, &sid, &seq, &at); err != nil {
			rows.Close()
			return v, err
		}
		perSession[sid]++
		k, known := bySession[sid]
		if !known || seq == nil || *seq < 1 || *seq > l.sessions[k].sent.Load() {
			v.Phantom++
			v.problem("row %s (session %s, seq %v) was never sent", id, sid, seq)
			continue
		}
		r := ref{k, *seq}
		count[r]++
		received[r] = at
		if want := l.sessions[k].ids[*seq-1]; id != want {
			v.IDMismatch++
			v.problem("session %s seq %d stored as %s, sent as %s", sid, *seq, id, want)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return v, err
	}
	for k, s := range l.sessions {
		acked, sent := s.acked.Load(), s.sent.Load()
		var last time.Time
		var lastSeq int64
		for seq := int64(1); seq <= sent; seq++ {
			r := ref{k, seq}
			c := count[r]
			switch {
			case c == 0 && seq <= acked:
				v.Lost++
				v.problem("lost: session %s seq %d id %s (acknowledged)", s.id, seq, s.ids[seq-1])
			case c > 1:
				v.Duplicated += c - 1
				v.problem("duplicated: session %s seq %d stored %d times", s.id, seq, c)
			}
			if c > 0 && seq > acked {
				v.UnackedStored++
			}
			if c > 0 {
				if at := received[r]; at.Before(last) {
					v.ReceivedOutOfOrder++
					v.problem("session %s: seq %d received_at %s before seq %d's %s", s.id, seq, at.Format(time.RFC3339Nano), lastSeq, last.Format(time.RFC3339Nano))
				} else {
					last, lastSeq = at, seq
				}
			}
		}
	}

	// Session aggregates count every stored event once.
	var sessions []struct {
		ID    uuid.UUID `db:"id"`
		Count int64     `db:"event_count"`
	}
	if err := p.db.SelectContext(ctx, &sessions, `SELECT id, event_count FROM sessions`); err != nil {
		return v, err
	}
	for _, s := range sessions {
		if s.Count != perSession[s.ID] {
			v.CountMismatch++
			v.problem("session %s: event_count %d, %d rows", s.ID, s.Count, perSession[s.ID])
		}
	}
	if err := p.db.GetContext(ctx, &v.ErrorRecords, `SELECT count(*) FROM errors`); err != nil {
		return v, err
	}
	if v.ErrorRecords > 0 {
		var reasons []string
		_ = p.db.SelectContext(ctx, &reasons, `SELECT DISTINCT stage || ':' || array_to_string(reason_codes, ',') FROM errors LIMIT 10`)
		v.ErrorReasons = reasons
		v.problem("%d error records: %s", v.ErrorRecords, strings.Join(reasons, "; "))
	}

	// Topics: the first copy of each event comes after the first copies of
	// every lower sequence number of its session.
	rawIDs := func(value []byte) (uuid.UUID, error) {
		var e contract.RawEvent
		err := contract.Decode(value, &e)
		return e.EventID, err
	}
	validIDs := func(value []byte) (uuid.UUID, error) {
		var e contract.Event
		err := contract.Decode(value, &e)
		return e.ID, err
	}
	var distinct int64
	if v.RawOutOfOrder, v.RawRecords, distinct, err = p.topicOrder(ctx, p.topics.Raw, byID, l, rawIDs, &v); err != nil {
		return v, err
	}
	v.RawCopies = v.RawRecords - distinct
	if v.ValidOutOfOrder, v.ValidRecords, _, err = p.topicOrder(ctx, p.topics.Events, byID, l, validIDs, &v); err != nil {
		return v, err
	}
	return v, nil
}

// topicOrder reads topic from its first to its last offset and counts, per
// session, first copies whose sequence number is below one already seen
// (out of order), the records and the distinct events among them.
func (p *pipeline) topicOrder(ctx context.Context, topic string, byID map[uuid.UUID]ref, l *load,
	idOf func([]byte) (uuid.UUID, error), v *verdict) (outOfOrder, records, distinct int64, err error) {
	seen := map[uuid.UUID]bool{}
	high := make([]int64, len(l.sessions))
	err = readTopic(ctx, p.brk.Addr(), topic, func(value []byte) {
		records++
		id, err := idOf(value)
		if err != nil {
			v.problem("%s: undecodable record: %v", topic, err)
			return
		}
		r, ok := byID[id]
		if !ok {
			v.problem("%s: record of unknown event %s", topic, id)
			return
		}
		if seen[id] {
			return
		}
		seen[id] = true
		distinct++
		if r.seq < high[r.s] {
			outOfOrder++
			v.problem("%s: session %s seq %d first appears after seq %d", topic, l.sessions[r.s].id, r.seq, high[r.s])
			return
		}
		high[r.s] = r.seq
	})
	return outOfOrder, records, distinct, err
}

// readTopic calls fn with every record of topic, partition by partition,
// in offset order, from the log start to the end offset at the time of the
// call.
func readTopic(ctx context.Context, addr, topic string, fn func(value []byte)) error {
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return err
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return fmt.Errorf("metadata of %s: %+v", topic, md.Topics)
	}
	var ends, starts []kafka.OffsetRequest
	for _, part := range md.Topics[0].Partitions {
		ends = append(ends, kafka.LastOffsetOf(part.ID))
		starts = append(starts, kafka.FirstOffsetOf(part.ID))
	}
	end, err := stack.ListOffsets(ctx, client, topic, ends, func(o kafka.PartitionOffsets) int64 { return o.LastOffset })
	if err != nil {
		return err
	}
	start, err := stack.ListOffsets(ctx, client, topic, starts, func(o kafka.PartitionOffsets) int64 { return o.FirstOffset })
	if err != nil {
		return err
	}
	for part, last := range end {
		if start[part] >= last {
			continue
		}
		if err := readPartition(ctx, addr, topic, part, start[part], last, fn); err != nil {
			return err
		}
	}
	return nil
}

func readPartition(ctx context.Context, addr, topic string, part int, from, to int64, fn func([]byte)) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, Topic: topic, Partition: part, MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for next := from; next < to; {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s/%d at %d (end %d): %w", topic, part, next, to, err)
		}
		fn(m.Value)
		next = m.Offset + 1
	}
	return nil
}

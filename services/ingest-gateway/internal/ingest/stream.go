package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

// LineReceipt is a receipt for one line of an NDJSON stream (1-based).
type LineReceipt struct {
	Line int `json:"line"`
	Receipt
}

// StreamResult summarises an NDJSON stream that was read to its end.
type StreamResult struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	// Rejections lists the first MaxRejections rejected lines.
	Rejections []LineReceipt `json:"rejections"`
}

// MaxRejections bounds how many rejected lines a stream answer lists.
const MaxRejections = 100

// StreamError is a stream stopped part-way: the first Acknowledged lines
// were durably handled (accepted or recorded as errors); the client may
// resend from line Acknowledged+1, and client ids make that idempotent.
type StreamError struct {
	Acknowledged int
	Err          error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("stream stopped after %d acknowledged lines: %v", e.Acknowledged, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// chunkSize is how many events are published together at most; a chunk is
// also published whenever the reader has no more bytes at hand, so events
// reach Kafka as they arrive and memory stays bounded by one chunk.
const chunkSize = 500

// Stream ingests an NDJSON stream: one event object per line, blank lines
// ignored. Events are published in chunks as they arrive.
func (s *Service) Stream(ctx context.Context, app uuid.UUID, r io.Reader, admit Admit) (StreamResult, error) {
	var (
		res     = StreamResult{Rejections: []LineReceipt{}}
		chunk   []contract.Message
		pending int // events (not error records) in chunk
		line    int
		acked   int
	)
	br := bufio.NewReaderSize(r, s.limits.MaxEventBytes+2)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if pending > 0 {
			if err := admit(pending); err != nil {
				return err
			}
		}
		if err := s.publish(ctx, chunk...); err != nil {
			return err
		}
		chunk, pending, acked = chunk[:0], 0, line
		return nil
	}
	for {
		doc, tooLong, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			if ferr := flush(); ferr != nil {
				return res, &StreamError{Acknowledged: acked, Err: ferr}
			}
			return res, &StreamError{Acknowledged: acked, Err: fmt.Errorf("read body: %w", err)}
		}
		if len(doc) > 0 || tooLong {
			line++
			if res.Accepted+res.Rejected >= s.limits.MaxStreamEvents {
				if ferr := flush(); ferr != nil {
					return res, &StreamError{Acknowledged: acked, Err: ferr}
				}
				return res, &StreamError{Acknowledged: acked, Err: fmt.Errorf("%w: the limit per stream is %d", ErrTooManyEvents, s.limits.MaxStreamEvents)}
			}
			received := event.Canonical(s.now())
			var (
				rc  Receipt
				msg contract.Message
			)
			if tooLong {
				rc, msg, err = s.rejectLine(app, doc, received)
			} else {
				rc, msg, err = s.prepare(app, doc, received)
			}
			if err != nil {
				return res, &StreamError{Acknowledged: acked, Err: err}
			}
			chunk = append(chunk, msg)
			if rc.Status == StatusAccepted {
				res.Accepted++
				pending++
			} else {
				res.Rejected++
				if len(res.Rejections) < MaxRejections {
					res.Rejections = append(res.Rejections, LineReceipt{Line: line, Receipt: rc})
				}
			}
		}
		done := errors.Is(err, io.EOF)
		if done || len(chunk) >= chunkSize || br.Buffered() == 0 {
			if ferr := flush(); ferr != nil {
				return res, &StreamError{Acknowledged: acked, Err: ferr}
			}
		}
		if done {
			if line == 0 {
				return res, ErrEmptyBatch
			}
			return res, nil
		}
	}
}

// rejectLine records a line over the size limit by its first bytes.
func (s *Service) rejectLine(app uuid.UUID, prefix []byte, received time.Time) (Receipt, contract.Message, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Receipt{}, contract.Message{}, fmt.Errorf("ingest: new id: %w", err)
	}
	reason := event.Reason{Code: event.CodeTooLarge, Message: fmt.Sprintf("line is over %d bytes", s.limits.MaxEventBytes)}
	msg, err := s.errorRecord(id, app, prefix, received, reason)
	return Receipt{ID: id, Status: StatusRejected, Reasons: event.Reasons{reason}}, msg, err
}

// readLine reads one line without its newline, trimmed of spaces. A line
// longer than the reader's buffer is consumed to its end and reported
// tooLong with its first bytes. The returned slice is a copy.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	b, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		prefix := bytes.Clone(b)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		return prefix, true, err
	}
	return bytes.Clone(bytes.TrimSpace(b)), false, err
}

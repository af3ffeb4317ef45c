package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

func TestStream(t *testing.T) {
	rec := &recorder{}
	s := newService(t, rec)
	body := strings.Join([]string{
		`{"session_id":"` + sid + `","n":1}`,
		``,
		`not json`,
		`{"session_id":"` + sid + `","x":"` + strings.Repeat("a", 300) + `"}`, // over 200 bytes
		`{"session_id":"` + sid + `","n":2}`,
	}, "\n")
	res, err := s.Stream(context.Background(), uuid.New(), strings.NewReader(body), admitAll)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || res.Rejected != 2 || len(res.Rejections) != 2 ||
		res.Rejections[0].Line != 2 || res.Rejections[0].Reasons[0].Code != event.CodeInvalidJSON ||
		res.Rejections[1].Line != 3 || res.Rejections[1].Reasons[0].Code != event.CodeTooLarge {
		t.Fatalf("result %+v", res)
	}
	var topicsSeen []string
	for _, m := range rec.msgs {
		topicsSeen = append(topicsSeen, m.Topic)
	}
	if want := []string{topics.Raw, topics.Errors, topics.Errors, topics.Raw}; fmt.Sprint(topicsSeen) != fmt.Sprint(want) {
		t.Fatalf("published to %v, want %v", topicsSeen, want)
	}
}

// slowReader hands out one line per Read, like a client streaming slowly.
type slowReader struct{ lines []string }

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.lines) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.lines[0]+"\n")
	r.lines = r.lines[1:]
	return n, nil
}

// failAfter is a Publisher that fails once it has published n messages.
type failAfter struct {
	n    int
	msgs []contract.Message
}

func (f *failAfter) Publish(_ context.Context, msgs ...contract.Message) error {
	if len(f.msgs)+len(msgs) > f.n {
		return errors.New("broker gone")
	}
	f.msgs = append(f.msgs, msgs...)
	return nil
}

func TestStreamPublishesAsItArrivesAndReportsAcknowledgedLines(t *testing.T) {
	var lines []string
	for i := range 10 {
		lines = append(lines, fmt.Sprintf(`{"session_id":"%s","n":%d}`, sid, i))
	}
	pub := &failAfter{n: 4}
	s := newService(t, pub)
	_, err := s.Stream(context.Background(), uuid.New(), &slowReader{lines: lines}, admitAll)
	var se *StreamError
	if !errors.As(err, &se) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want a StreamError wrapping ErrUnavailable", err)
	}
	// One line arrives per read, so each was published on its own: exactly
	// the lines before the failure are acknowledged.
	if se.Acknowledged != 4 || len(pub.msgs) != 4 {
		t.Fatalf("acknowledged %d, published %d; want 4 and 4", se.Acknowledged, len(pub.msgs))
	}
}

func TestStreamRateLimitStopsWithAcknowledgedCount(t *testing.T) {
	rec := &recorder{}
	s := newService(t, rec)
	limited := errors.New("limited")
	admitted := 0
	admit := func(n int) error {
		if admitted+n > 3 {
			return limited
		}
		admitted += n
		return nil
	}
	var lines []string
	for i := range 6 {
		lines = append(lines, fmt.Sprintf(`{"session_id":"%s","n":%d}`, sid, i))
	}
	_, err := s.Stream(context.Background(), uuid.New(), &slowReader{lines: lines}, admit)
	var se *StreamError
	if !errors.As(err, &se) || !errors.Is(err, limited) || se.Acknowledged != 3 {
		t.Fatalf("err = %v", err)
	}
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/lab/loadgen"
)

// body kinds the gateway accepts.
const (
	bodySingle = "single"
	bodyArray  = "array"
	bodyNDJSON = "ndjson"
)

// generators makes one event generator per worker, each with its own
// sessions (30 open sessions per application per worker).
func generators(apps []loadgen.App, workers int, seed uint64) []*loadgen.Generator {
	out := make([]*loadgen.Generator, workers)
	for w := range out {
		out[w] = loadgen.NewGenerator(apps, 30, seed*1_000_003+uint64(w))
	}
	return out
}

// sent is what a successful request carried, for the visibility probe.
type sent struct {
	first uuid.UUID // the first event's id (the client's own)
	acked time.Time // when the 202 arrived
}

// postOp posts generated events to the gateway's url in the given body
// kind (batch events per request for arrays and NDJSON), with each
// application's write key. A request counts as successful only with a 202
// whose receipts accept every event. When onAck is set it is called after
// each successful request.
func postOp(client *http.Client, url string, apps []loadgen.App, gens []*loadgen.Generator, kind string, batch int,
	onAck func(worker int, s sent)) loadgen.Op {
	return func(ctx context.Context, w int) (int, error) {
		g := gens[w]
		var body []byte
		var events []loadgen.Event
		ctype := "application/json"
		switch kind {
		case bodySingle:
			events = []loadgen.Event{g.Next()}
			body = loadgen.Single(events[0])
		case bodyArray:
			events = g.Batch(batch)
			body = loadgen.Array(events)
		case bodyNDJSON:
			events = g.Batch(batch)
			body = loadgen.NDJSON(events)
			ctype = "application/x-ndjson"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer "+apps[events[0].App].Key)
		res, err := client.Do(req)
		if err != nil {
			return 0, fmt.Errorf("transport: %s", errClass(err))
		}
		answer, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("read answer: %s", errClass(err))
		}
		if res.StatusCode != http.StatusAccepted {
			return 0, fmt.Errorf("HTTP %d %s", res.StatusCode, errCode(answer))
		}
		switch kind {
		case bodyNDJSON:
			if !bytes.Contains(answer, []byte(fmt.Sprintf(`"accepted":%d`, len(events)))) {
				return 0, fmt.Errorf("stream not wholly accepted: %.200s", answer)
			}
		default:
			if bytes.Contains(answer, []byte(`"rejected"`)) {
				return 0, fmt.Errorf("rejected receipt: %.200s", answer)
			}
		}
		if onAck != nil {
			onAck(w, sent{first: events[0].ID, acked: time.Now()})
		}
		return len(events), nil
	}
}

var codeRE = regexp.MustCompile(`"code":"([^"]*)"`)

// errCode is the error code of a JSON error answer, for grouping.
func errCode(answer []byte) string {
	if m := codeRE.FindSubmatch(answer); m != nil {
		return string(m[1])
	}
	return ""
}

var portRE = regexp.MustCompile(`:\d+->|:\d+`)

// errClass strips ports from an error so that errors group.
func errClass(err error) string {
	s := portRE.ReplaceAllString(err.Error(), "")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
)

// readTopic reads the pipeline's topic (named by its unprefixed-name
// picker) from the start, in a group of its own, and returns the first
// record match accepts; it fails the test after 30 s.
func (p *pipeline) readTopic(t *testing.T, pick func(contract.Topics) string, match func(kafka.Message) bool) kafka.Message {
	t.Helper()
	topic := pick(contract.NewTopics(p.Getenv("EYE_TOPIC_PREFIX")))
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: strings.Split(p.Getenv("EYE_KAFKA_BROKERS"), ","), GroupID: "e2e-" + uuid.NewString(), Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 250 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		if match(m) {
			return m
		}
	}
}

// headers returns a record's headers as a map.
func headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// TestStatsTimelineAndErasure: events ingested through the gateway show up
// in the stats and in their session's timeline, in the order they happened;
// erasing the session removes its events, errors and audit and puts a
// tombstone on the erasures topic.
func TestStatsTimelineAndErasure(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	session, other := uuid.NewString(), uuid.NewString()
	ev := func(s, category, name, ts string) map[string]any {
		return map[string]any{"session_id": s, "category": category, "name": name, "data": map[string]any{"path": "/"}, "timestamp": ts}
	}
	// Sent out of order: the timeline is in the order things happened.
	batch := []any{
		ev(session, "form interaction", "submit", "2021-06-15 00:01:30"),
		ev(session, "page interaction", "pageview", "2021-06-15 00:00:00"),
		ev(session, "page interaction", "cta click", "2021-06-15 00:01:05"),
		ev(session, "page interaction", "pageview", "2021-06-15 00:00:40"),
		ev(other, "page interaction", "pageview", "2021-06-15 00:00:10"),
		ev(session, "c", "n", "2021-06-15 00:00:50"), // no data: an error record of the session
	}
	batch[5].(map[string]any)["data"] = map[string]any{}
	if res := do(t, "POST", p.gateway+"/events/", writeKey, batch); res.status != http.StatusAccepted {
		t.Fatalf("POST /events/: %d %s", res.status, res.body)
	}

	var timeline page[storedEvent]
	p.eventually(15*time.Second, "the session's four events are stored", func() bool {
		do(t, "GET", p.query+"/sessions/"+session+"/events", adminKey, nil).json(t, &timeline)
		return len(timeline.Results) == 4
	})
	for i, want := range []string{"00:00:00", "00:00:40", "00:01:05", "00:01:30"} {
		if got := timeline.Results[i].Timestamp.Format("15:04:05"); got != want {
			t.Fatalf("timeline event %d at %s, want %s: %+v", i, got, want, timeline.Results)
		}
	}
	var errs page[storedError]
	p.eventually(15*time.Second, "the session's error record is stored", func() bool {
		do(t, "GET", p.query+"/errors/?session="+session, adminKey, nil).json(t, &errs)
		return len(errs.Results) == 1
	})

	q := url.Values{"bucket": {"minute"}, "from": {"2021-06-15T00:00:00Z"}, "to": {"2021-06-15T00:59:59Z"}, "group": {"category,name"}}
	res := do(t, "GET", p.query+"/stats/events?"+q.Encode(), adminKey, nil)
	var stats struct {
		Bucket  string
		Results []struct {
			Bucket   time.Time
			Category string
			Name     string
			Count    int
		}
	}
	res.json(t, &stats)
	type key struct{ minute, category, name string }
	got := map[key]int{}
	for _, s := range stats.Results {
		got[key{s.Bucket.Format("15:04"), s.Category, s.Name}] = s.Count
	}
	want := map[key]int{
		{"00:00", "page interaction", "pageview"}:  3, // two of the session, one of the other
		{"00:01", "page interaction", "cta click"}: 1,
		{"00:01", "form interaction", "submit"}:    1,
	}
	if res.status != http.StatusOK || stats.Bucket != "minute" || len(got) != len(want) {
		t.Fatalf("stats: %d %s", res.status, res.body)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("stats %v = %d, want %d: %s", k, got[k], n, res.body)
		}
	}

	// An audited change, then the erasure.
	edited := timeline.Results[0].ID
	if res := do(t, "PATCH", p.query+"/events/"+edited, adminKey, map[string]any{"name": "landing"}); res.status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", res.status, res.body)
	}
	var audit page[struct{ Action string }]
	do(t, "GET", p.query+"/events/"+edited+"/audit", adminKey, nil).json(t, &audit)
	if len(audit.Results) != 1 || audit.Results[0].Action != "patch" {
		t.Fatalf("audit %+v", audit)
	}

	res = do(t, "DELETE", p.query+"/sessions/"+session, adminKey, nil)
	var erasure struct {
		SessionID    string `json:"session_id"`
		TombstoneID  string `json:"tombstone_id"`
		Session      bool
		Events       int
		Errors       int
		AuditEntries int `json:"audit_entries"`
	}
	res.json(t, &erasure)
	if res.status != http.StatusOK || erasure.SessionID != session || !erasure.Session || erasure.Events != 4 || erasure.Errors != 1 || erasure.AuditEntries != 1 {
		t.Fatalf("DELETE /sessions/%s: %d %s", session, res.status, res.body)
	}
	for _, path := range []string{"/sessions/" + session, "/sessions/" + session + "/events", "/events/" + edited, "/events/" + edited + "/audit"} {
		if res := do(t, "GET", p.query+path, adminKey, nil); res.status != http.StatusNotFound {
			t.Errorf("GET %s after the erasure: %d %s", path, res.status, res.body)
		}
	}
	for _, path := range []string{"/events/?session=" + session, "/errors/?session=" + session} {
		var list page[map[string]any]
		if do(t, "GET", p.query+path, adminKey, nil).json(t, &list); len(list.Results) != 0 {
			t.Errorf("GET %s after the erasure: %d results", path, len(list.Results))
		}
	}
	var kept page[storedEvent]
	if do(t, "GET", p.query+"/sessions/"+other+"/events", adminKey, nil).json(t, &kept); len(kept.Results) != 1 {
		t.Fatalf("the other session lost its events: %+v", kept)
	}

	// The tombstone, on the erasures topic of this pipeline's prefix.
	m := p.readTopic(t, func(t contract.Topics) string { return t.Erasures }, func(kafka.Message) bool { return true })
	var ts contract.Tombstone
	if err := contract.Decode(m.Value, &ts); err != nil {
		t.Fatal(err)
	}
	typ := headers(m)[contract.HeaderType]
	if string(m.Key) != session || typ != contract.TypeTombstone || ts.SessionID.String() != session ||
		ts.ID.String() != erasure.TombstoneID || ts.AppID == uuid.Nil || ts.RequestedAt.IsZero() {
		t.Fatalf("tombstone: key %s, type %s, %+v", m.Key, typ, ts)
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/metrics"
)

var recordedAs = regexp.MustCompile(`recorded as error ([0-9a-f-]{36})`)

// TestBadInputsThroughThePipeline: every bad input gets its own reason code
// as an error record, with no 5xx, and the good event posted right after
// each one still lands — nothing stalls a partition.
func TestBadInputsThroughThePipeline(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	session := uuid.NewString()
	head := `"session_id":"` + session + `","category":"c","name":"n"`
	ok := func(data, ts string) string { return `{` + head + `,"data":` + data + `,"timestamp":"` + ts + `"}` }
	const when = "2021-06-15T00:00:00Z"
	cases := []struct {
		name, body string
		code       string
	}{
		{"invalid json", `{` + head + `,"data":{"a":1},`, "invalid_json"},
		{"trailing garbage", ok(`{"a":1}`, when) + ` trailing`, "invalid_json"},
		{"top-level array of scalars", `[1]`, "not_an_object"},
		{"top-level string", `"an event"`, "not_an_object"},
		{"invalid utf-8", ok(`{"a":"`+"\xff\xfe"+`"}`, when), "invalid_utf8"},
		{"nul in a value", ok(`{"a":"x\u0000y"}`, when), "nul_character"},
		{"nul in a key", ok(`{"a\u0000":1}`, when), "nul_character"},
		{"NaN", ok(`{"a":NaN}`, when), "invalid_json"},
		{"Infinity", ok(`{"a":Infinity}`, when), "invalid_json"},
		{"number beyond float64", ok(`{"a":1e999}`, when), "invalid_number"},
		{"duplicate keys", ok(`{"a":1,"a":2}`, when), "duplicate_key"},
		{"nesting deeper than the limit", ok(strings.Repeat(`{"a":`, 40)+`1`+strings.Repeat(`}`, 40), when), "too_deep"},
		{"huge string", ok(`{"a":"`+strings.Repeat("x", 64<<10)+`"}`, when), "too_large"},
		{"unknown timestamp format", ok(`{"a":1}`, "15/06/2021 10:00"), "invalid_timestamp"},
		{"impossible date", ok(`{"a":1}`, "2021-02-30T00:00:00Z"), "invalid_timestamp"},
		{"year 0", ok(`{"a":1}`, "0000-06-15T00:00:00Z"), "invalid_timestamp"},
		{"year 10000", ok(`{"a":1}`, "10000-06-15T00:00:00Z"), "invalid_timestamp"},
		{"non-UUID session id", `{"session_id":"session-1","category":"c","name":"n","data":{"a":1},"timestamp":"` + when + `"}`, "invalid_session_id"},
		{"empty data", ok(`{}`, when), "empty_data"},
		{"future timestamp", ok(`{"a":1}`, time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)), "future_timestamp"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := do(t, "POST", p.gateway+"/events/", writeKey, c.body)
			var id string
			switch {
			case res.status == http.StatusAccepted && strings.HasPrefix(c.body, "["):
				var out struct{ Events []receipt }
				res.json(t, &out)
				id = out.Events[0].ID
			case res.status == http.StatusAccepted:
				var rc receipt
				res.json(t, &rc)
				id = rc.ID
			case res.status >= 400 && res.status < 500:
				m := recordedAs.FindStringSubmatch(string(res.body))
				if m == nil {
					t.Fatalf("%d without an error record: %s", res.status, res.body)
				}
				id = m[1]
			default:
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			var (
				e    storedError
				body []byte
			)
			p.eventually(15*time.Second, "error record "+id, func() bool {
				r := do(t, "GET", p.query+"/errors/"+id, adminKey, nil)
				if r.status == http.StatusOK {
					r.json(t, &e)
					body = r.body
				}
				return r.status == http.StatusOK
			})
			if len(e.Reasons) == 0 || e.Reasons[0].Code != c.code {
				t.Fatalf("error record %s, want reason %s", body, c.code)
			}
			var good receipt
			do(t, "POST", p.gateway+"/events/", writeKey, ok(fmt.Sprintf(`{"after":%d}`, i), when)).json(t, &good)
			p.eventually(15*time.Second, "the good event after it lands", func() bool {
				return do(t, "GET", p.query+"/events/"+good.ID, adminKey, nil).status == http.StatusOK
			})
		})
	}

	t.Run("a record that is not an envelope goes to the dead-letter topic", func(t *testing.T) {
		topics := contract.NewTopics(p.Getenv("EYE_TOPIC_PREFIX"))
		brokers := strings.Split(p.Getenv("EYE_KAFKA_BROKERS"), ",")
		prod, err := kafkax.NewProducer(kafkax.ProducerConfig{Brokers: brokers, Metrics: metrics.New("e2e")})
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		junk := "not an envelope " + uuid.NewString()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := prod.Publish(ctx, contract.Message{Topic: topics.Raw, Key: []byte(session), Value: []byte(junk)}); err != nil {
			t.Fatal(err)
		}
		m := p.readTopic(t, func(t contract.Topics) string { return t.DeadLetter }, func(m kafka.Message) bool { return string(m.Value) == junk })
		if h := headers(m); string(m.Key) != session || h[contract.HeaderDLQStage] != "validator" || h[contract.HeaderDLQReason] == "" ||
			!strings.HasPrefix(h[contract.HeaderDLQSource], topics.Raw+"/") {
			t.Fatalf("dead letter: key %s, headers %v", m.Key, h)
		}
		var list page[storedError]
		p.eventually(15*time.Second, "an invalid_envelope error record", func() bool {
			do(t, "GET", p.query+"/errors/?reason=invalid_envelope", adminKey, nil).json(t, &list)
			for _, e := range list.Results {
				if e.Payload.Data == junk {
					return true
				}
			}
			return false
		})
	})

	// A record the writer can decode but Postgres refuses (a NUL in a text
	// column, SQLSTATE 22021) fails its batch for good: after the retries
	// it goes to the dead-letter topic, and the errors partition flows on.
	t.Run("a record Postgres refuses is dead-lettered and the partition flows on", func(t *testing.T) {
		topics := contract.NewTopics(p.Getenv("EYE_TOPIC_PREFIX"))
		brokers := strings.Split(p.Getenv("EYE_KAFKA_BROKERS"), ",")
		prod, err := kafkax.NewProducer(kafkax.ProducerConfig{Brokers: brokers, Metrics: metrics.New("e2e")})
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		// The application of the e2e keys, from an error record of its own.
		res := do(t, "POST", p.gateway+"/events/", writeKey, "not json")
		m := recordedAs.FindStringSubmatch(string(res.body))
		if m == nil {
			t.Fatalf("no error id in %d %s", res.status, res.body)
		}
		var own struct {
			AppID uuid.UUID `json:"application_id"`
		}
		p.eventually(15*time.Second, "the gateway's error record", func() bool {
			r := do(t, "GET", p.query+"/errors/"+m[1], readKey, nil)
			if r.status != http.StatusOK {
				return false
			}
			r.json(t, &own)
			return true
		})
		sid := uuid.MustParse(session)
		record := func(stage string) contract.Message {
			now := time.Now().UTC()
			msg, err := contract.Encode(topics.Errors, session, &contract.Error{
				ID: uuid.New(), AppID: own.AppID, SessionID: &sid, Stage: stage,
				Reasons: []event.Reason{{Code: event.CodeStorageRejected, Message: "made by the e2e test"}},
				Payload: contract.NewPayload([]byte(`{"a":1}`)), ReceivedAt: now, DetectedAt: now,
			})
			if err != nil {
				t.Fatal(err)
			}
			return msg
		}
		poison, good := record("writer\x00"), record("writer")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := prod.Publish(ctx, poison, good); err != nil { // same key: one partition, poison first
			t.Fatal(err)
		}
		var goodID struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(good.Value, &goodID); err != nil {
			t.Fatal(err)
		}
		p.eventually(60*time.Second, "the record after the refused one", func() bool {
			return do(t, "GET", p.query+"/errors/"+goodID.ID, readKey, nil).status == http.StatusOK
		})
		dead := p.readTopic(t, func(t contract.Topics) string { return t.DeadLetter }, func(m kafka.Message) bool { return string(m.Value) == string(poison.Value) })
		if h := headers(dead); string(dead.Key) != session || h[contract.HeaderDLQStage] != "writer" ||
			!strings.Contains(h[contract.HeaderDLQReason], "permanently") || !strings.HasPrefix(h[contract.HeaderDLQSource], topics.Errors+"/") {
			t.Fatalf("dead letter: key %s, headers %v", dead.Key, h)
		}
	})
}

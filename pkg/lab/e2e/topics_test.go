package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/kafkax"
	"github.com/the-eye/eye/pkg/lab/stack"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/pkg/topicschema"
)

// TestTopicRecordsMatchThePublishedContract drives every kind of record
// through the running pipeline — good events, events the gateway and the
// validator reject, a schema and an event checked against it, a replay, an
// erasure, records that are not envelopes — then reads every topic from the
// start and checks each record against docs/: its value against the JSON
// Schema of its envelope type, its headers and key against the AsyncAPI
// document, its key and partition against docs/topics.md (murmur2 over the
// key).
func TestTopicRecordsMatchThePublishedContract(t *testing.T) {
	ck, err := topicschema.Load("../../../docs")
	if err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t, pipelineOpts{})
	topics := contract.NewTopics(p.Getenv("EYE_TOPIC_PREFIX"))
	session, erased := uuid.NewString(), uuid.NewString()
	ev := func(s string, data any, extra ...any) map[string]any {
		e := map[string]any{"session_id": s, "category": "page interaction", "name": "pageview", "data": data, "timestamp": "2021-06-15 00:00:00.100000"}
		for i := 0; i+1 < len(extra); i += 2 {
			e[extra[i].(string)] = extra[i+1]
		}
		return e
	}
	// post sends body and wants status want (any 4xx for 400).
	post := func(body any, want int) receipt {
		t.Helper()
		res := do(t, "POST", p.gateway+"/events/", writeKey, body)
		if res.status != want && (want != http.StatusBadRequest || res.status < 400 || res.status > 499) {
			t.Fatalf("POST /events/ %v: %d %s, want %d", body, res.status, res.body, want)
		}
		var rc receipt
		if want == http.StatusAccepted {
			res.json(t, &rc)
		}
		return rc
	}
	stored := func(kind, id string) {
		t.Helper()
		p.eventually(15*time.Second, kind+" "+id+" stored", func() bool {
			return do(t, "GET", p.query+"/"+kind+"/"+id, readKey, nil).status == http.StatusOK
		})
	}

	// Good events, in both session spellings, with a client id and sent_at.
	stored("events", post(ev(session, map[string]any{"path": "/"}, "sent_at", "2021-06-15T00:00:02Z"), http.StatusAccepted).ID)
	alt := ev("", map[string]any{"path": "/b"}, "id", uuid.NewString())
	delete(alt, "session_id")
	alt["session"] = map[string]any{"id": strings.ToUpper(session)}
	stored("events", post(alt, http.StatusAccepted).ID)
	stored("events", post(ev(erased, map[string]any{"path": "/erased"}), http.StatusAccepted).ID)

	// Rejected by the validator: empty data (replayed below), a session id
	// that is no UUID (keyed by its text), a future timestamp.
	empty := post(ev(session, map[string]any{}), http.StatusAccepted).ID
	stored("errors", empty)
	stored("errors", post(ev("session-1", map[string]any{"a": 1}), http.StatusAccepted).ID)
	stored("errors", post(ev(session, map[string]any{"a": 1}, "timestamp", "2999-01-01T00:00:00Z"), http.StatusAccepted).ID)

	// Rejected by the gateway (null key): not UTF-8 nor JSON (a base64
	// payload), not an object, no session.
	post([]byte{0xff, 0xfe, '{'}, http.StatusBadRequest)
	post(`"an event"`, http.StatusBadRequest)
	post(`{"category":"c","name":"n","data":{"a":1},"timestamp":"2021-06-15T00:00:00Z"}`, http.StatusBadRequest)

	// A schema, and one event that passes it and one that does not.
	const category, name = "e2e topics", "checked"
	res := do(t, "POST", p.query+"/admin/schemas", adminKey, map[string]any{"category": category, "name": name,
		"schema": map[string]any{"type": "object", "required": []string{"path"}, "properties": map[string]any{"path": map[string]any{"type": "string"}}}})
	if res.status != http.StatusCreated {
		t.Fatalf("add schema: %d %s", res.status, res.body)
	}
	p.eventually(30*time.Second, "the validator applies the schema", func() bool {
		var held page[schemaRecord]
		r := do(t, "GET", p.validate+"/schemas", "", nil)
		if r.status != http.StatusOK {
			return false
		}
		r.json(t, &held)
		for _, s := range held.Results {
			if s.Category == category && s.Name == name {
				return true
			}
		}
		return false
	})
	typed := func(data map[string]any) map[string]any {
		e := ev(session, data)
		e["category"], e["name"] = category, name
		return e
	}
	stored("events", post(typed(map[string]any{"path": "/"}), http.StatusAccepted).ID)
	stored("errors", post(typed(map[string]any{"host": "h"}), http.StatusAccepted).ID)

	// A corrected replay of the empty-data record.
	res = do(t, "POST", p.query+"/errors/"+empty+"/replay", adminKey, map[string]any{"payload": ev(session, map[string]any{"path": "/fixed"})})
	if res.status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", res.status, res.body)
	}
	stored("events", empty)

	// An erasure.
	if res := do(t, "DELETE", p.query+"/sessions/"+erased, adminKey, nil); res.status != http.StatusOK {
		t.Fatalf("erase: %d %s", res.status, res.body)
	}

	// Records that are not envelopes, on the raw and the valid topic: dead
	// letters from the validator and from the writer.
	brokers := strings.Split(p.Getenv("EYE_KAFKA_BROKERS"), ",")
	prod, err := kafkax.NewProducer(kafkax.ProducerConfig{Brokers: brokers, Metrics: metrics.New("e2e")})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const junk = "not an envelope"
	for _, topic := range []string{topics.Raw, topics.Events} {
		if err := prod.Publish(ctx, contract.Message{Topic: topic, Key: []byte(session), Value: []byte(junk)}); err != nil {
			t.Fatal(err)
		}
	}

	// Everything processed: the pipeline's groups have read all there is.
	prefix := p.Getenv("EYE_TOPIC_PREFIX")
	groups := map[string]string{prefix + "validator": topics.Raw, prefix + "writer.events": topics.Events, prefix + "writer.errors": topics.Errors}
	quiet := 0
	p.eventually(60*time.Second, "the pipeline's consumer groups caught up", func() bool {
		lag, err := stack.Lag(ctx, brokers[0], groups)
		caughtUp := err == nil && lag[prefix+"validator"] == 0 && lag[prefix+"writer.events"] == 0 && lag[prefix+"writer.errors"] == 0
		if caughtUp {
			quiet++
		} else {
			quiet = 0
		}
		return quiet >= 5
	})

	seen := map[string]int{} // what the records covered
	for _, topic := range []string{topics.Raw, topics.Events, topics.Errors, topics.Erasures, topics.Schemas, topics.DeadLetter} {
		msgs, partitions := p.readAll(t, ctx, topic)
		for _, m := range msgs {
			where := fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset)
			h := headers(m)
			if topic == topics.DeadLetter {
				if err := ck.Headers(topicschema.DeadLetterMessage, h); err != nil {
					t.Errorf("%s: headers %v: %v", where, h, err)
				}
				if err := ck.Key(topicschema.DeadLetterMessage, m.Key); err != nil {
					t.Errorf("%s: key %q: %v", where, m.Key, err)
				}
				seen["dead letter from "+h[contract.HeaderDLQStage]]++
				continue
			}
			if string(m.Value) == junk {
				seen["junk"]++ // written by this test, not by The Eye
				continue
			}
			if err := ck.Record(h, m.Key, m.Value); err != nil {
				t.Errorf("%s: %v\nheaders %v\nvalue %s", where, err, h, m.Value)
				continue
			}
			typ := h[contract.HeaderType]
			if want := map[string]string{topics.Raw: contract.TypeRawEvent, topics.Events: contract.TypeEvent, topics.Errors: contract.TypeError,
				topics.Erasures: contract.TypeTombstone, topics.Schemas: contract.TypeSchema}[topic]; typ != want {
				t.Errorf("%s: a %s record, want %s", where, typ, want)
			}
			var v struct {
				SessionID     *string         `json:"session_id"`
				Stage         string          `json:"stage"`
				Category      string          `json:"category"`
				Name          string          `json:"name"`
				Version       int             `json:"version"`
				SchemaVersion int             `json:"schema_version"`
				ReplayOf      json.RawMessage `json:"replay_of"`
				Payload       struct{ Encoding string }
			}
			if err := json.Unmarshal(m.Value, &v); err != nil {
				t.Fatal(err)
			}
			seen[typ]++
			if typ == contract.TypeError {
				seen["error from "+v.Stage]++
			}
			if v.Payload.Encoding != "" {
				seen[typ+" with a "+v.Payload.Encoding+" payload"]++
			}
			if v.SchemaVersion > 0 {
				seen[typ+" with schema_version"]++
			}
			if v.ReplayOf != nil {
				seen[typ+" with replay_of"]++
			}
			// Keys (docs/topics.md, Keys and partitioning).
			switch {
			case typ == contract.TypeEvent || typ == contract.TypeTombstone:
				if v.SessionID == nil || string(m.Key) != *v.SessionID {
					t.Errorf("%s: key %q, session_id %v", where, m.Key, v.SessionID)
				}
			case typ == contract.TypeSchema:
				if want := contract.SchemaKey(v.Category, v.Name, v.Version); string(m.Key) != want {
					t.Errorf("%s: key %q, want %q", where, m.Key, want)
				}
			case typ == contract.TypeError && v.Stage == contract.StageGateway:
				if m.Key != nil {
					t.Errorf("%s: a gateway error record with key %q", where, m.Key)
				}
			}
			// Partitions: murmur2 over the key bytes, as Java's default.
			if m.Key != nil {
				ids := make([]int, partitions)
				for i := range ids {
					ids[i] = i
				}
				if want := (kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: m.Key}, ids...); m.Partition != want {
					t.Errorf("%s: key %q on partition %d, murmur2 says %d", where, m.Key, m.Partition, want)
				}
			}
		}
	}
	for _, want := range []string{
		contract.TypeRawEvent, contract.TypeEvent, contract.TypeError, contract.TypeTombstone, contract.TypeSchema,
		"error from gateway", "error from validator", "error from writer",
		"error with a base64 payload", "error with a utf8 payload", "raw_event with a utf8 payload",
		"event with schema_version", "error with schema_version", "raw_event with replay_of", "event with replay_of",
		"dead letter from validator", "dead letter from writer",
	} {
		if seen[want] == 0 {
			t.Errorf("no %s among the records read: %v", want, seen)
		}
	}
	if seen["junk"] != 2 {
		t.Errorf("read %d of the 2 records that are not envelopes", seen["junk"])
	}
	t.Logf("records checked: %v", seen)
}

// readAll reads every record topic holds now (up to the end offsets it has
// when called), and returns them with the topic's partition count.
func (p *pipeline) readAll(t *testing.T, ctx context.Context, topic string) ([]kafka.Message, int) {
	t.Helper()
	brokers := strings.Split(p.Getenv("EYE_KAFKA_BROKERS"), ",")
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %v", topic, err, md)
	}
	var starts, ends []kafka.OffsetRequest
	for _, part := range md.Topics[0].Partitions {
		starts = append(starts, kafka.FirstOffsetOf(part.ID))
		ends = append(ends, kafka.LastOffsetOf(part.ID))
	}
	start, err := stack.ListOffsets(ctx, client, topic, starts, func(o kafka.PartitionOffsets) int64 { return o.FirstOffset })
	if err != nil {
		t.Fatal(err)
	}
	end, err := stack.ListOffsets(ctx, client, topic, ends, func(o kafka.PartitionOffsets) int64 { return o.LastOffset })
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for part, e := range end {
		total += e - start[part]
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: "e2e-" + uuid.NewString(), Topic: topic,
		StartOffset: kafka.FirstOffset, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	for int64(len(out)) < total {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %v (%d of %d records)", topic, err, len(out), total)
		}
		if m.Offset < end[m.Partition] {
			out = append(out, m)
		}
	}
	return out, len(md.Topics[0].Partitions)
}

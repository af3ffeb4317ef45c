package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// errorsReaderKey reads errorsApp's records only.
const errorsReaderKey = "eye_r_httpapi_errors_reader_key_000000"

var errorsApp = uuid.MustParse("0190a0b0-0000-7000-8000-0000000000e1")

// rawTopic records what replays publish.
type rawTopic struct{ msgs []contract.Message }

func (r *rawTopic) Publish(_ context.Context, msgs ...contract.Message) error {
	r.msgs = append(r.msgs, msgs...)
	return nil
}

// newErrorsServer is the query API with a replayer on topic, with adminKey
// (read + admin) and errorsReaderKey.
func newErrorsServer(t *testing.T, topic *rawTopic) (http.Handler, *sqlx.DB) {
	t.Helper()
	s := newTestServer(t, func(s *testServer) []Option {
		replayer, err := query.NewReplayer(s.pg, event.DefaultRules(), topic, "eye.events.raw.v1", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return []Option{WithReplayer(replayer)}
	})
	s.addReader(t, errorsApp, errorsReaderKey)
	return s, s.db
}

// TestErrorRoutes: the list's category and name filters, the summary, and
// single and bulk replays with their status codes and scopes.
func TestErrorRoutes(t *testing.T) {
	topic := &rawTopic{}
	h, db := newErrorsServer(t, topic)
	session := "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"
	payload := func(data string) string {
		return `{"session_id": "` + session + `", "category": "page interaction", "name": "pageview", "data": ` + data + `, "timestamp": "2021-06-15 00:00:00"}`
	}
	add := func(app uuid.UUID, category, name, code, body string) uuid.UUID {
		id := uuid.New()
		db.MustExec(`INSERT INTO errors (id, app_id, stage, reason_codes, reasons, payload, received_at, detected_at, category, name)
			VALUES ($1, $2, 'validator', $3, $4, $5, now(), now(), $6, $7)`,
			id, app, "{"+code+"}", `[{"code":"`+code+`","message":"m"}]`, []byte(body), category, name)
		return id
	}
	mine := add(errorsApp, "page interaction", "pageview", "empty_data", payload(`{}`))
	add(errorsApp, "page interaction", "cta click", "empty_data", payload(`{}`))
	theirs := add(auth.DevAppID, "page interaction", "pageview", "empty_data", payload(`{}`))

	var list ErrorList
	res := call(t, h, "GET", "/errors/?category=page%20interaction&name=pageview", errorsReaderKey, "")
	res.decode(t, &list)
	if res.status != http.StatusOK || len(list.Results) != 1 || list.Results[0].ID != mine || *list.Results[0].Name != "pageview" ||
		!strings.Contains(string(res.body), `"replayed_as":null`) {
		t.Fatalf("filtered list: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/errors?replayed=maybe", errorsReaderKey, ""); res.status != http.StatusBadRequest {
		t.Fatalf("bad replayed: %d %s", res.status, res.body)
	}

	var sum query.ErrorSummary
	for _, path := range []string{"/errors/summary?by=category,name", "/errors/summary/?by=category,%20name"} {
		res = call(t, h, "GET", path, errorsReaderKey, "")
		res.decode(t, &sum)
		if res.status != http.StatusOK || len(sum.Groups) != 2 || sum.Groups[0].Count != 1 || sum.Groups[0].Reason != nil {
			t.Fatalf("%s: %d %s", path, res.status, res.body)
		}
	}
	res = call(t, h, "GET", "/errors/summary", adminKey, "")
	res.decode(t, &sum)
	if res.status != http.StatusOK || len(sum.Groups) != 1 || *sum.Groups[0].Reason != "empty_data" || sum.Groups[0].Count != 3 {
		t.Fatalf("admin summary by reason: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/errors/summary?by=colour", adminKey, ""); res.status != http.StatusBadRequest || res.code(t) != "invalid_parameter" {
		t.Fatalf("unknown grouping: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/errors/"+mine.String(), errorsReaderKey, ""); res.status != http.StatusOK {
		t.Fatalf("get beside summary: %d %s", res.status, res.body)
	}

	// Replays need the admin scope.
	for _, path := range []string{"/errors/" + mine.String() + "/replay", "/errors/replay"} {
		if res := call(t, h, "POST", path, errorsReaderKey, ""); res.status != http.StatusForbidden {
			t.Fatalf("%s with a read key: %d %s", path, res.status, res.body)
		}
	}
	var rep query.ReplayReport
	res = call(t, h, "POST", "/errors/"+theirs.String()+"/replay?dry_run=true", adminKey, "")
	res.decode(t, &rep)
	if res.status != http.StatusOK || !rep.DryRun || rep.Failing != 1 || rep.Failures[0].Code != event.CodeEmptyData {
		t.Fatalf("dry run: %d %s", res.status, res.body)
	}
	if res := call(t, h, "POST", "/errors/"+theirs.String()+"/replay", adminKey, ""); res.status != http.StatusUnprocessableEntity ||
		res.code(t) != "replay_invalid" || len(topic.msgs) != 0 {
		t.Fatalf("replay that still fails: %d %s", res.status, res.body)
	}
	if res := call(t, h, "POST", "/errors/"+theirs.String()+"/replay", adminKey, `{"paylod": {}}`); res.status != http.StatusBadRequest {
		t.Fatalf("misspelt body: %d %s", res.status, res.body)
	}
	if res := call(t, h, "POST", "/errors/"+uuid.NewString()+"/replay/", adminKey, ""); res.status != http.StatusNotFound {
		t.Fatalf("unknown record: %d %s", res.status, res.body)
	}
	res = call(t, h, "POST", "/errors/"+theirs.String()+"/replay/", adminKey, `{"payload": `+payload(`{"a": 1}`)+`}`)
	res.decode(t, &rep)
	if res.status != http.StatusAccepted || rep.Published != 1 || rep.Results[0].EventID != theirs || len(topic.msgs) != 1 {
		t.Fatalf("replay: %d %s", res.status, res.body)
	}
	var got query.Error
	call(t, h, "GET", "/errors/"+theirs.String(), adminKey, "").decode(t, &got)
	if got.ReplayedAs == nil || *got.ReplayedAs != theirs || got.ReplayAttempts != 1 {
		t.Fatalf("replayed record: %+v", got)
	}

	// Bulk: the two records not replayed yet still fail.
	res = call(t, h, "POST", "/errors/replay?dry_run=true&category=page%20interaction", adminKey, "")
	res.decode(t, &rep)
	if res.status != http.StatusOK || rep.Matched != 2 || rep.Failing != 2 || rep.Failures[0].Count != 2 {
		t.Fatalf("bulk dry run: %d %s", res.status, res.body)
	}
	res = call(t, h, "POST", "/errors/replay/?limit=1", adminKey, "")
	res.decode(t, &rep)
	if res.status != http.StatusAccepted || rep.Matched != 1 || !rep.More || rep.Published != 0 {
		t.Fatalf("bulk replay: %d %s", res.status, res.body)
	}
	if res := call(t, h, "POST", "/errors/replay?limit=10001", adminKey, ""); res.status != http.StatusBadRequest {
		t.Fatalf("limit over the maximum: %d %s", res.status, res.body)
	}
}

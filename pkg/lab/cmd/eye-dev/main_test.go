package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/lab/stack"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

// An older keys.env (write and read keys only) keeps its keys and gains an
// admin key; each generated key has its scope's prefix.
func TestDevKeysAddsAdminKeyToOldKeysFile(t *testing.T) {
	home := t.TempDir()
	old := "EYE_DEV_WRITE_KEY=eye_w_saved\nEYE_DEV_READ_KEY=eye_r_saved\n"
	if err := os.WriteFile(filepath.Join(home, "keys.env"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := devKeys(home, auth.DevKeys{})
	if err != nil {
		t.Fatal(err)
	}
	if keys.Write != "eye_w_saved" || keys.Read != "eye_r_saved" || !strings.HasPrefix(keys.Admin, "eye_a_") {
		t.Fatalf("keys %+v", keys)
	}
	again, err := devKeys(home, auth.DevKeys{})
	if err != nil || again != keys {
		t.Fatalf("second start: %+v %v, want %+v", again, err, keys)
	}
	fresh, err := devKeys(t.TempDir(), auth.DevKeys{Read: "eye_r_from_env"})
	if err != nil || !strings.HasPrefix(fresh.Write, "eye_w_") || fresh.Read != "eye_r_from_env" || !strings.HasPrefix(fresh.Admin, "eye_a_") {
		t.Fatalf("fresh home: %+v %v", fresh, err)
	}
}

// TestRun is `make run` on the test broker and database: an event posted
// with the write key comes back with the read key, and the end of the
// context (Ctrl-C) stops every service cleanly.
func TestRun(t *testing.T) {
	bin := t.TempDir()
	if err := harness.Build("../../../..", bin); err != nil {
		t.Fatal(err)
	}
	const (
		writeKey = "eye_w_eyedev_write_key_000000000000000"
		readKey  = "eye_r_eyedev_read_key_0000000000000000"
	)
	t.Setenv("EYE_HOME", t.TempDir())
	t.Setenv("EYE_BIN_DIR", bin)
	t.Setenv("EYE_SCHEMA_DIR", "../../../../deploy/schemas")
	t.Setenv("EYE_KAFKA_BROKERS", strings.Join(testkit.Kafka(t), ","))
	t.Setenv("EYE_POSTGRES_DSN", testkit.Postgres(t))
	t.Setenv("EYE_TOPIC_PREFIX", testkit.TopicPrefix(t))
	t.Setenv("EYE_DEV_WRITE_KEY", writeKey)
	t.Setenv("EYE_DEV_READ_KEY", readKey)
	t.Setenv("EYE_LOG_LEVEL", "warn")
	addrs := map[string]string{}
	for _, v := range []string{"EYE_GATEWAY_ADDR", "EYE_QUERY_ADDR", "EYE_VALIDATOR_ADDR", "EYE_WRITER_ADDR"} {
		port, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addrs[v] = fmt.Sprintf("127.0.0.1:%d", port)
		t.Setenv(v, addrs[v])
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	gateway, query := "http://"+addrs["EYE_GATEWAY_ADDR"], "http://"+addrs["EYE_QUERY_ADDR"]
	ready := func() bool {
		for _, a := range addrs {
			if !harness.HTTPOK(ctx, "http://"+a+"/readyz") {
				return false
			}
		}
		return true
	}
	if err := stack.Poll(ctx, 2*time.Minute, ready); err != nil {
		t.Fatalf("services not ready: %v", err)
	}

	session := uuid.NewString()
	body := `{"session_id":"` + session + `","category":"page interaction","name":"pageview",` +
		`"data":{"host":"www.example.com","path":"/"},"timestamp":"2021-01-01 09:15:27.243860"}`
	if status, b := call(t, "POST", gateway+"/events/", writeKey, body); status != http.StatusAccepted {
		t.Fatalf("POST /events/: %d %s", status, b)
	}
	err := stack.Poll(ctx, time.Minute, func() bool {
		status, b := call(t, "GET", query+"/events/?session="+session, readKey, "")
		var page struct{ Results []any }
		return status == http.StatusOK && json.Unmarshal([]byte(b), &page) == nil && len(page.Results) == 1
	})
	if err != nil {
		t.Fatalf("event not queryable: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after Ctrl-C: %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("run did not return within 45 s of Ctrl-C")
	}
	for v, a := range addrs {
		if harness.HTTPOK(context.Background(), "http://"+a+"/healthz") {
			t.Errorf("%s=%s still answers after run returned", v, a)
		}
	}
	logs, err := os.ReadDir(os.Getenv("EYE_HOME") + "/logs")
	if err != nil || len(logs) != len(harness.Services) {
		t.Errorf("logs in EYE_HOME/logs: %v (%v), want one per service", logs, err)
	}
}

func call(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

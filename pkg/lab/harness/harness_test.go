package harness_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/lab/stack"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

// binDir holds the service binaries, built once for the test binary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := testkit.TempDir("eye-harness-bin-") // removed by testkit.Main
	if err == nil {
		binDir = dir
		err = harness.Build("../../..", dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testkit.Main(m, pg.MigrateDSN)
}

const (
	writeKey = "eye_w_harness_write_key_00000000000000"
	readKey  = "eye_r_harness_read_key_000000000000000"
)

// TestPipeline runs the four services (two writers) on the test broker and
// database: an event goes in at the gateway and comes back out of the
// query-api; a killed writer is down until started again; an instance that
// dies on its own is reported and restarted; a second writer joins; the
// end of the context stops every instance cleanly. Each kill hits a
// consumer whose group has settled (an event went through first).
func TestPipeline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := harness.New(ctx, harness.Options{
		BinDir: binDir, LogDir: t.TempDir(),
		Brokers: strings.Join(testkit.Kafka(t), ","), PostgresDSN: testkit.Postgres(t), TopicPrefix: testkit.TopicPrefix(t),
		Partitions: 3, WriteKey: writeKey, ReadKey: readKey, Restart: true,
		Env: []string{"EYE_LOG_LEVEL=warn"}, ServiceEnv: map[harness.Service][]string{harness.Query: {"EYE_LOG_LEVEL=info"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(p.LogTails(3000))
		}
	}()
	if err := p.Start(ctx, harness.Services...); err != nil {
		t.Fatal(err)
	}
	for _, s := range harness.Services {
		if i := p.Instance(s); i == nil || !harness.HTTPOK(ctx, i.URL+"/readyz") {
			t.Fatalf("%s is not ready", s)
		}
	}

	// Per-service settings reach that service only.
	for s, info := range map[harness.Service]bool{harness.Query: true, harness.Gateway: false} {
		log, err := os.ReadFile(p.Instance(s).LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(log), `"level":"INFO"`); got != info {
			t.Errorf("%s logged at info: %v, want %v", s, got, info)
		}
	}

	roundTrip(t, p, uuid.NewString())

	t.Run("kill and start again", func(t *testing.T) {
		w := p.Instance(harness.Writer)
		pid := w.Pid()
		w.Kill()
		if stack.Alive(pid) || harness.HTTPOK(ctx, w.URL+"/healthz") {
			t.Fatalf("%s still up after Kill", w.Name)
		}
		time.Sleep(1500 * time.Millisecond) // longer than the restart delay
		if harness.HTTPOK(ctx, w.URL+"/healthz") {
			t.Fatalf("%s restarted after Kill: a kill is not a crash", w.Name)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		if err := w.WaitReady(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		if c := p.Crashes(); len(c) != 0 {
			t.Fatalf("crashes after a kill: %q", c)
		}
	})

	t.Run("an exit of its own is reported and restarted", func(t *testing.T) {
		v := p.Instance(harness.Validator)
		pid := v.Pid()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-p.Crashed():
			if !strings.HasPrefix(r, v.Name+": ") {
				t.Fatalf("crash report %q, want one from %s", r, v.Name)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no crash reported")
		}
		if err := stack.Poll(ctx, time.Minute, func() bool { return v.Pid() != pid }); err != nil {
			t.Fatalf("%s not restarted: %v", v.Name, err)
		}
		if err := v.WaitReady(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		if c := p.Crashes(); len(c) != 2 || !strings.Contains(c[0], v.Name+" exited on its own 1×") {
			t.Fatalf("crashes %q, want one of %s", c, v.Name)
		}
	})

	roundTrip(t, p, uuid.NewString())

	t.Run("a second instance of a consumer", func(t *testing.T) {
		w, err := p.Add(ctx, harness.Writer)
		if err != nil {
			t.Fatal(err)
		}
		if all := p.Instances(harness.Writer); len(all) != 2 || all[1] != w || w.Name != "writer-2" {
			t.Fatalf("writers %v, want writer-1 and the new writer-2", all)
		}
		roundTrip(t, p, uuid.NewString())
	})

	t.Run("the end of the context stops every instance", func(t *testing.T) {
		var pids []int
		for _, s := range harness.Services {
			for _, i := range p.Instances(s) {
				pids = append(pids, i.Pid())
			}
		}
		cancel()
		if errs := p.Stop(); len(errs) != 0 {
			t.Fatalf("unclean stops: %v", errs)
		}
		for _, pid := range pids {
			if stack.Alive(pid) {
				t.Errorf("pid %d still alive", pid)
			}
		}
		if err := p.Start(context.Background(), harness.Gateway); err == nil {
			t.Error("a stopped pipeline started an instance")
		}
	})
}

// roundTrip posts an event for session and waits until the query-api
// returns it.
func roundTrip(t *testing.T, p *harness.Pipeline, session string) {
	t.Helper()
	body := `{"session_id":"` + session + `","category":"page interaction","name":"pageview",` +
		`"data":{"host":"www.example.com","path":"/"},"timestamp":"2021-01-01 09:15:27.243860"}`
	if status, b := call(t, "POST", p.URL(harness.Gateway)+"/events/", writeKey, body); status != http.StatusAccepted {
		t.Fatalf("POST /events/: %d %s", status, b)
	}
	err := stack.Poll(context.Background(), 2*time.Minute, func() bool {
		status, b := call(t, "GET", p.URL(harness.Query)+"/events/?session="+session, readKey, "")
		var page struct{ Results []struct{ Session any } }
		return status == http.StatusOK && json.Unmarshal([]byte(b), &page) == nil && len(page.Results) == 1
	})
	if err != nil {
		t.Fatalf("event of session %s not queryable: %v", session, err)
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

func TestStartUnknownService(t *testing.T) {
	p, err := harness.New(context.Background(), harness.Options{BinDir: binDir, LogDir: filepath.Join(t.TempDir(), "logs")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), harness.Service("no-such-service")); err == nil {
		t.Fatal("started an unknown service")
	}
}

// A setting left empty adds nothing: the inherited value applies (e.g. a
// topic prefix set for `make run`); a setting given wins.
func TestEnvInheritsWhatIsNotSet(t *testing.T) {
	t.Setenv("EYE_TOPIC_PREFIX", "inherited.")
	t.Setenv("EYE_KAFKA_BROKERS", "inherited:9092")
	p, err := harness.New(context.Background(), harness.Options{BinDir: binDir, LogDir: t.TempDir(),
		Brokers: "given:9092", Env: []string{"EYE_LOG_LEVEL=debug"}})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"EYE_TOPIC_PREFIX": "inherited.", "EYE_KAFKA_BROKERS": "given:9092",
		"EYE_LOG_LEVEL": "debug", "EYE_TOPIC_PARTITIONS": ""} {
		if got := p.Getenv(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

var services = []string{"ingest-gateway", "validator", "writer", "query-api"}

// binDir holds the service binaries, built once per test run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := testkit.TempDir("eye-e2e-bin-") // removed by testkit.Main
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	root, err := filepath.Abs("../..")
	if err == nil {
		for _, s := range services {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, s), "./services/"+s+"/cmd/"+s)
			cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
			if err = cmd.Run(); err != nil {
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build services:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	testkit.Main(m, pg.MigrateDSN)
}

const (
	writeKey = "eye_w_e2e_write_key_000000000000000000"
	readKey  = "eye_r_e2e_read_key_0000000000000000000"
	adminKey = "eye_a_e2e_admin_key_000000000000000000"
)

// pipeline is the four services running as processes against shared
// infrastructure, with topics and a database of their own.
type pipeline struct {
	t        *testing.T
	gateway  string
	query    string
	validate string
	write    string
	dsn      string // the pipeline's own database
	env      []string
	procs    map[string]*exec.Cmd
	logs     map[string]*bytes.Buffer
}

type pipelineOpts struct {
	brokers string   // default: the shared test broker
	only    []string // services to start; default: all four
	env     []string // extra KEY=value settings for every service
}

func startPipeline(t *testing.T, opts pipelineOpts) *pipeline {
	t.Helper()
	brokers := opts.brokers
	if brokers == "" {
		brokers = strings.Join(testkit.Kafka(t), ",")
	}
	dsn := testkit.Postgres(t)
	prefix := testkit.TopicPrefix(t)
	p := &pipeline{t: t, dsn: dsn, procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{}}
	ports := make([]int, 4)
	for i := range ports {
		port, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = port
	}
	p.gateway = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	p.query = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	p.validate = fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	p.write = fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	p.env = append(os.Environ(),
		"EYE_KAFKA_BROKERS="+brokers, "EYE_POSTGRES_DSN="+dsn, "EYE_TOPIC_PREFIX="+prefix,
		"EYE_TOPIC_PARTITIONS=3", "EYE_DEV_WRITE_KEY="+writeKey, "EYE_DEV_READ_KEY="+readKey, "EYE_DEV_ADMIN_KEY="+adminKey,
		"EYE_LOG_LEVEL=warn", "EYE_PUBLISH_TIMEOUT=3s",
		fmt.Sprintf("EYE_GATEWAY_ADDR=127.0.0.1:%d", ports[0]), fmt.Sprintf("EYE_QUERY_ADDR=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("EYE_VALIDATOR_ADDR=127.0.0.1:%d", ports[2]), fmt.Sprintf("EYE_WRITER_ADDR=127.0.0.1:%d", ports[3]))
	p.env = append(p.env, opts.env...)
	run := opts.only
	if run == nil {
		run = services
	}
	urls := map[string]string{"ingest-gateway": p.gateway, "query-api": p.query, "validator": p.validate, "writer": p.write}
	t.Cleanup(p.stop)
	for _, s := range run {
		p.start(s)
	}
	for _, s := range run {
		u := urls[s]
		p.eventually(60*time.Second, "service at "+u+" answers /healthz", func() bool {
			res, err := http.Get(u + "/healthz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
	}
	return p
}

func (p *pipeline) start(s string) {
	cmd := exec.Command(filepath.Join(binDir, s))
	buf := &bytes.Buffer{}
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, buf, buf
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", s, err)
	}
	p.procs[s], p.logs[s] = cmd, buf
}

// kill stops service s with SIGKILL: no drain, no goodbye.
func (p *pipeline) kill(s string) {
	cmd := p.procs[s]
	cmd.Process.Kill()
	cmd.Wait()
	delete(p.procs, s)
}

func (p *pipeline) stop() {
	for _, cmd := range p.procs {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	for s, cmd := range p.procs {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !p.t.Failed() {
				p.t.Errorf("%s did not exit cleanly on SIGTERM: %v", s, err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			p.t.Errorf("%s did not stop within 30 s of SIGTERM", s)
		}
	}
	if p.t.Failed() {
		for s, buf := range p.logs {
			p.t.Logf("--- %s log ---\n%s", s, tailOf(buf.String(), 4000))
		}
	}
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *pipeline) eventually(timeout time.Duration, what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// response is an HTTP answer with its decoded JSON body.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errorCode is the code of a JSON error body.
func (r response) errorCode(t *testing.T) string {
	var e struct {
		Error struct{ Code, Message string }
	}
	r.json(t, &e)
	return e.Error.Code
}

func do(t *testing.T, method, url, key string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

// binDir holds the service binaries, built once per test run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := testkit.TempDir("eye-e2e-bin-") // removed by testkit.Main
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if err := harness.Build("../../..", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
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

// pipeline is the services running as processes (pkg/lab/harness) against
// shared infrastructure, with topics and a database of their own.
type pipeline struct {
	*harness.Pipeline
	t        *testing.T
	gateway  string
	query    string
	validate string
	write    string
	dsn      string // the pipeline's own database
}

type pipelineOpts struct {
	brokers string            // default: the shared test broker
	only    []harness.Service // services to start; default: all four
	env     []string          // extra KEY=value settings for every service
}

func startPipeline(t *testing.T, opts pipelineOpts) *pipeline {
	t.Helper()
	brokers := opts.brokers
	if brokers == "" {
		brokers = strings.Join(testkit.Kafka(t), ",")
	}
	dsn := testkit.Postgres(t)
	pipe, err := harness.New(context.Background(), harness.Options{
		BinDir: binDir, LogDir: t.TempDir(),
		Brokers: brokers, PostgresDSN: dsn, TopicPrefix: testkit.TopicPrefix(t), Partitions: 3,
		WriteKey: writeKey, ReadKey: readKey, AdminKey: adminKey,
		Env: append([]string{"EYE_LOG_LEVEL=warn", "EYE_PUBLISH_TIMEOUT=3s"}, opts.env...),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{Pipeline: pipe, t: t, dsn: dsn}
	t.Cleanup(p.stop)
	services := opts.only
	if services == nil {
		services = harness.Services
	}
	if err := p.Start(context.Background(), services...); err != nil {
		t.Fatal(err)
	}
	p.gateway, p.query = p.URL(harness.Gateway), p.URL(harness.Query)
	p.validate, p.write = p.URL(harness.Validator), p.URL(harness.Writer)
	return p
}

// stop stops the services; an unclean stop or an exit of their own fails
// the test, and a failed test shows the end of every log.
func (p *pipeline) stop() {
	for _, err := range p.Stop() {
		p.t.Error(err)
	}
	for _, c := range p.Crashes() {
		p.t.Error(c)
	}
	if p.t.Failed() {
		p.t.Log(p.LogTails(4000))
	}
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

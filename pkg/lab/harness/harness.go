// Package harness runs The Eye's four services as processes on one
// machine, over a Kafka-protocol broker and a Postgres database it is
// given (it never chooses infrastructure). It is the one place that knows
// the services: their names, how to build their binaries from the
// workspace, the environment each needs, their listen addresses and their
// readiness. `make run` (pkg/lab/cmd/eye-dev), the end-to-end tests (pkg/lab/e2e),
// the fault suite (pkg/lab/faults) and the benchmark (pkg/lab/bench) all start the
// pipeline through it.
//
// A Pipeline starts any number of instances of each service, each a
// supervised Process that can be killed, frozen, started again or removed,
// with its output in a log file; when the context the Pipeline was made
// with ends, every instance is stopped.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/the-eye/eye/pkg/devstack"
	"github.com/the-eye/eye/pkg/lab/stack"
)

// Service is one of The Eye's services, named as its directory under
// services/ and its binary.
type Service string

// The four services.
const (
	Gateway   Service = "ingest-gateway"
	Validator Service = "validator"
	Writer    Service = "writer"
	Query     Service = "query-api"
)

// Services is every service, in the order Start is usually given them.
var Services = []Service{Gateway, Validator, Writer, Query}

// addrEnv is the variable that sets a service's listen address.
var addrEnv = map[Service]string{
	Gateway:   "EYE_GATEWAY_ADDR",
	Validator: "EYE_VALIDATOR_ADDR",
	Writer:    "EYE_WRITER_ADDR",
	Query:     "EYE_QUERY_ADDR",
}

// Build builds the given services (every service when none is given) of
// the workspace at root into dir, one binary per service named after it,
// with the go command's output on stderr.
func Build(root, dir string, services ...Service) error {
	if len(services) == 0 {
		services = Services
	}
	for _, s := range services {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, string(s)), "./services/"+string(s)+"/cmd/"+string(s))
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", s, err)
		}
	}
	return nil
}

// Options say where the pipeline runs and how its services are set up.
// The services inherit this process's environment; a setting left empty
// (or 0) adds nothing to it, so the inherited value or the services'
// default applies.
type Options struct {
	BinDir      string // the binaries, as Build left them
	LogDir      string // instance <service>-<n> logs to LogDir/<service>-<n>.log
	Brokers     string // EYE_KAFKA_BROKERS, comma-separated
	PostgresDSN string // EYE_POSTGRES_DSN
	TopicPrefix string // EYE_TOPIC_PREFIX
	Partitions  int    // EYE_TOPIC_PARTITIONS
	WriteKey    string // EYE_DEV_WRITE_KEY
	ReadKey     string // EYE_DEV_READ_KEY
	AdminKey    string // EYE_DEV_ADMIN_KEY
	SchemaDir   string // EYE_SCHEMA_DIR
	// Env are extra KEY=value settings for every service; ServiceEnv for
	// one service only (they win over Env).
	Env        []string
	ServiceEnv map[Service][]string
	// Addrs fixes a service's listen address (e.g. ":8080"); a service
	// not in it gets a free loopback port per instance. A fixed address
	// allows one instance at a time.
	Addrs map[Service]string
	// Restart starts an instance that exits on its own again a second
	// later (docker-compose's `restart: on-failure`); otherwise it stays
	// down. Either way the exit is recorded (Crashes) and sent on Crashed.
	Restart bool
	// ReadyTimeout bounds the wait for an instance's /readyz (default 90 s).
	ReadyTimeout time.Duration
	// Output, if set, also receives every instance's output (eye-dev: the
	// terminal).
	Output io.Writer
	// Redact is removed from crash reasons (e.g. a topic prefix that
	// differs between runs), so that reasons group.
	Redact *regexp.Regexp
}

// Pipeline is the service instances running under one set of Options.
type Pipeline struct {
	o         Options
	env       []string
	crashed   chan string
	stopWatch func() bool // unregisters the stop on ctx's end

	mu      sync.Mutex
	running map[Service][]*Process
	retired []*Process // removed (Remove), kept for their crash records
	seq     map[Service]int
	stopped bool // no instance starts any more

	stopOnce sync.Once
	errs     []error // Stop's result
}

// New prepares a pipeline; nothing runs until Start or Add. When ctx ends,
// every instance is stopped as Stop does.
func New(ctx context.Context, o Options) (*Pipeline, error) {
	if o.BinDir == "" || o.LogDir == "" {
		return nil, errors.New("harness: BinDir and LogDir are required")
	}
	if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
		return nil, err
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 90 * time.Second
	}
	p := &Pipeline{o: o, crashed: make(chan string, 16), running: map[Service][]*Process{}, seq: map[Service]int{}}
	p.env = os.Environ()
	for _, kv := range [][2]string{
		{"EYE_KAFKA_BROKERS", o.Brokers}, {"EYE_POSTGRES_DSN", o.PostgresDSN}, {"EYE_TOPIC_PREFIX", o.TopicPrefix},
		{"EYE_DEV_WRITE_KEY", o.WriteKey}, {"EYE_DEV_READ_KEY", o.ReadKey}, {"EYE_DEV_ADMIN_KEY", o.AdminKey},
		{"EYE_SCHEMA_DIR", o.SchemaDir},
	} {
		if kv[1] != "" {
			p.env = append(p.env, kv[0]+"="+kv[1])
		}
	}
	if o.Partitions > 0 {
		p.env = append(p.env, "EYE_TOPIC_PARTITIONS="+strconv.Itoa(o.Partitions))
	}
	p.env = append(p.env, o.Env...)
	p.stopWatch = context.AfterFunc(ctx, func() { p.Stop() })
	return p, nil
}

// Getenv is the value of a setting every service gets (the last one
// given), or "".
func (p *Pipeline) Getenv(key string) string {
	v := ""
	for _, kv := range p.env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// Start starts one more instance of each service given, all at once, and
// waits until every one of them is ready (GET /readyz answers 200).
func (p *Pipeline) Start(ctx context.Context, services ...Service) error {
	started := make([]*Process, 0, len(services))
	for _, s := range services {
		i, err := p.launch(s)
		if err != nil {
			return err
		}
		started = append(started, i)
	}
	for _, i := range started {
		if err := i.WaitReady(ctx, p.o.ReadyTimeout); err != nil {
			return err
		}
	}
	return nil
}

// Add starts one more instance of s and waits until it is ready.
func (p *Pipeline) Add(ctx context.Context, s Service) (*Process, error) {
	i, err := p.launch(s)
	if err != nil {
		return nil, err
	}
	return i, i.WaitReady(ctx, p.o.ReadyTimeout)
}

// launch starts instance <s>-<n> on its address.
func (p *Pipeline) launch(s Service) (*Process, error) {
	envVar, ok := addrEnv[s]
	if !ok {
		return nil, fmt.Errorf("harness: unknown service %q", s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, errors.New("harness: pipeline stopped")
	}
	addr, fixed := p.o.Addrs[s]
	if fixed && len(p.running[s]) > 0 {
		return nil, fmt.Errorf("harness: %s listens on the fixed address %s: one instance at a time", s, addr)
	}
	if !fixed {
		port, err := devstack.FreePort()
		if err != nil {
			return nil, err
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
	}
	p.seq[s]++
	name := fmt.Sprintf("%s-%d", s, p.seq[s])
	env := append(append([]string(nil), p.env...), envVar+"="+addr)
	i := &Process{
		Name: name, Service: string(s), Bin: filepath.Join(p.o.BinDir, string(s)),
		URL: "http://" + loopback(addr), Env: append(env, p.o.ServiceEnv[s]...),
		LogPath: filepath.Join(p.o.LogDir, name+".log"), Redact: p.o.Redact, NoRestart: !p.o.Restart,
		Output: p.o.Output,
		OnCrash: func(reason string) {
			select {
			case p.crashed <- name + ": " + reason:
			default: // nobody is listening; Crashes has it
			}
		},
	}
	if err := i.Start(); err != nil {
		return nil, err
	}
	p.running[s] = append(p.running[s], i)
	return i, nil
}

// loopback turns a listen address into one to dial: ":8080" and
// "0.0.0.0:8080" become "127.0.0.1:8080".
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Instances are the running instances of s, oldest first.
func (p *Pipeline) Instances(s Service) []*Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Process(nil), p.running[s]...)
}

// Instance is the oldest running instance of s, or nil.
func (p *Pipeline) Instance(s Service) *Process {
	if all := p.Instances(s); len(all) > 0 {
		return all[0]
	}
	return nil
}

// URL is the base URL of the oldest running instance of s, or "".
func (p *Pipeline) URL(s Service) string {
	if i := p.Instance(s); i != nil {
		return i.URL
	}
	return ""
}

// Remove stops instance i with SIGTERM, as a scale-down does, and takes
// it out of the running instances (its crash record is kept).
func (p *Pipeline) Remove(i *Process) error {
	p.mu.Lock()
	s := Service(i.Service)
	for k, r := range p.running[s] {
		if r == i {
			p.running[s] = append(p.running[s][:k:k], p.running[s][k+1:]...)
			p.retired = append(p.retired, i)
			break
		}
	}
	p.mu.Unlock()
	return i.Stop()
}

// all is every instance ever started, running ones first; p.mu is held.
func (p *Pipeline) all() []*Process {
	var out []*Process
	for _, s := range Services {
		out = append(out, p.running[s]...)
	}
	return append(out, p.retired...)
}

// Crashed receives "<instance>: <reason>" each time an instance exits on
// its own (when nobody receives, the oldest are dropped; Crashes has all).
func (p *Pipeline) Crashed() <-chan string { return p.crashed }

// Crashes summarises every exit an instance made on its own.
func (p *Pipeline) Crashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, i := range p.all() {
		out = append(out, i.Crashes()...)
	}
	return out
}

// LogTails is the last n bytes of every instance's log, for failure
// reports.
func (p *Pipeline) LogTails(n int64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, i := range p.all() {
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s", i.Name, i.LogPath, stack.TailFile(i.LogPath, n))
	}
	return b.String()
}

// Stop stops every running instance with SIGTERM, all at once, waiting up
// to 30 s for each, and returns one error per instance that did not exit
// cleanly. Later calls wait for the first and return its errors.
func (p *Pipeline) Stop() []error {
	p.stopOnce.Do(func() {
		p.stopWatch()
		p.mu.Lock()
		p.stopped = true
		var running []*Process
		for _, s := range Services {
			running = append(running, p.running[s]...)
		}
		p.mu.Unlock()
		errs := make([]error, len(running))
		var wg sync.WaitGroup
		for k, i := range running {
			wg.Go(func() { errs[k] = i.Stop() })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				p.errs = append(p.errs, err)
			}
		}
	})
	return p.errs
}

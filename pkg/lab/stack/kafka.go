package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/the-eye/eye/pkg/devstack"
)

// Broker is a real single-node Apache Kafka broker run by scripts/kafka.sh
// on ports and a data directory of its own (never 9092).
type Broker struct {
	script string // path of scripts/kafka.sh
	data   string // EYE_KAFKA_DATA
	port   int    // EYE_KAFKA_PORT
	cport  int    // EYE_KAFKA_CONTROLLER_PORT
	log    string // kafka.sh's own progress output, appended
}

// NewBroker picks two free ports for a broker keeping its data in dir;
// repoRoot is where scripts/kafka.sh lives. Nothing starts until Start.
func NewBroker(repoRoot, dir string) (*Broker, error) {
	port, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	cport, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	return &Broker{script: filepath.Join(repoRoot, "scripts", "kafka.sh"), data: dir, port: port, cport: cport,
		log: filepath.Join(filepath.Dir(dir), "kafka.sh.log")}, nil
}

// Addr is the broker's bootstrap address.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// Data is the broker's data directory (config, pid, logs, log.dirs).
func (b *Broker) Data() string { return b.data }

// script runs scripts/kafka.sh cmd with the broker's environment.
func (b *Broker) run(ctx context.Context, cmd string) error {
	logf, err := os.OpenFile(b.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.CommandContext(ctx, "bash", b.script, cmd)
	c.Env = append(os.Environ(), "EYE_KAFKA_DATA="+b.data, "EYE_KAFKA_PORT="+strconv.Itoa(b.port),
		"EYE_KAFKA_CONTROLLER_PORT="+strconv.Itoa(b.cport))
	c.Stdout, c.Stderr = logf, logf
	if err := c.Run(); err != nil {
		return fmt.Errorf("scripts/kafka.sh %s: %w (see %s)", cmd, err, b.log)
	}
	return nil
}

// Start starts the broker (reusing its data) and returns once it answers
// metadata and its group coordinator works; a running broker is kept.
func (b *Broker) Start(ctx context.Context) error { return b.run(ctx, "start") }

// Stop stops the broker with SIGTERM (SIGKILL after 30 s).
func (b *Broker) Stop(ctx context.Context) error { return b.run(ctx, "stop") }

// Kill sends SIGKILL to the broker JVM and waits until it is gone: no
// shutdown hook runs, nothing is flushed or checkpointed.
func (b *Broker) Kill(ctx context.Context) error {
	raw, err := os.ReadFile(filepath.Join(b.data, "kafka.pid"))
	if err != nil {
		return fmt.Errorf("broker pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("broker pid %q: %w", raw, err)
	}
	if !Alive(pid) {
		return fmt.Errorf("broker (pid %d) is not running", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill broker: %w", err)
	}
	return Poll(ctx, 30*time.Second, func() bool { return !Alive(pid) })
}

// Version is the Kafka version the broker logged at start-up, or
// "unknown".
func (b *Broker) Version() string {
	for _, log := range []string{"server.log", "server.log.prev"} {
		raw, _ := os.ReadFile(filepath.Join(b.data, "logs", log))
		if _, after, ok := bytes.Cut(raw, []byte("Kafka version: ")); ok {
			v := strings.TrimSpace(string(bytes.SplitN(after, []byte("\n"), 2)[0]))
			v, _, _ = strings.Cut(v, " ")
			return v
		}
	}
	return "unknown"
}

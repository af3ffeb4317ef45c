package faults

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/the-eye/eye/pkg/devstack"
)

// broker is a real single-node Apache Kafka broker run by scripts/kafka.sh
// on the suite's own ports and data directory.
type broker struct {
	data  string // EYE_KAFKA_DATA
	port  int    // EYE_KAFKA_PORT
	cport int    // EYE_KAFKA_CONTROLLER_PORT
	log   string // kafka.sh's own progress output, appended
}

// newBroker picks two free ports for a broker keeping its data in dir.
func newBroker(dir string) (*broker, error) {
	port, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	cport, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	return &broker{data: dir, port: port, cport: cport, log: filepath.Join(filepath.Dir(dir), "kafka.sh.log")}, nil
}

// Addr is the broker's bootstrap address.
func (b *broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// script runs scripts/kafka.sh cmd with the broker's environment.
func (b *broker) script(ctx context.Context, cmd string) error {
	logf, err := os.OpenFile(b.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot, "scripts", "kafka.sh"), cmd)
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
func (b *broker) Start(ctx context.Context) error { return b.script(ctx, "start") }

// Stop stops the broker with SIGTERM (SIGKILL after 30 s).
func (b *broker) Stop(ctx context.Context) error { return b.script(ctx, "stop") }

// Kill sends SIGKILL to the broker JVM and waits until it is gone: no
// shutdown hook runs, nothing is flushed or checkpointed.
func (b *broker) Kill(ctx context.Context) error {
	raw, err := os.ReadFile(filepath.Join(b.data, "kafka.pid"))
	if err != nil {
		return fmt.Errorf("broker pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("broker pid %q: %w", raw, err)
	}
	if !alive(pid) {
		return fmt.Errorf("broker (pid %d) is not running", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill broker: %w", err)
	}
	return poll(ctx, 30*time.Second, func() bool { return !alive(pid) })
}

// pgCluster is the suite's private, durable Postgres cluster.
type pgCluster struct {
	dir  string
	port int
	pg   *devstack.Postgres
}

// Start starts the cluster (initialising it the first time) with fsync and
// synchronous commits on.
func (c *pgCluster) Start(ctx context.Context) error {
	p, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{Dir: c.dir, Port: c.port, Durable: true})
	if err != nil {
		return err
	}
	c.pg, c.port = p, p.Port()
	return nil
}

// LogSize is the size of the server log, so that LogSince can return what
// was logged after it.
func (c *pgCluster) LogSize() int64 {
	fi, err := os.Stat(filepath.Join(c.dir, "pgdata", "server.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LogSince returns the server log from byte offset off on (pg_ctl appends
// to one log across restarts).
func (c *pgCluster) LogSince(off int64) string {
	f, err := os.Open(filepath.Join(c.dir, "pgdata", "server.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, 0); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// DSN is a connection string for database db.
func (c *pgCluster) DSN(db string) string { return c.pg.DSN(db) }

// Stop stops the cluster with pg_ctl's fast mode: sessions are terminated,
// a checkpoint is written.
func (c *pgCluster) Stop() error { return c.pg.StopAlways() }

// Crash shuts the cluster down in PostgreSQL's immediate mode (SIGQUIT to
// the postmaster): every backend quits at once with no checkpoint, and the
// next start replays the WAL, as after a power loss of the process tree.
func (c *pgCluster) Crash(ctx context.Context) error {
	pid, err := c.postmaster()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
		return fmt.Errorf("SIGQUIT postmaster: %w", err)
	}
	pidFile := filepath.Join(c.dir, "pgdata", "postmaster.pid")
	return poll(ctx, 60*time.Second, func() bool {
		_, err := os.Stat(pidFile)
		return !alive(pid) && errors.Is(err, os.ErrNotExist)
	})
}

// Freeze stops (SIGSTOP) the postmaster and every process it forked, so
// the server keeps its sockets open but answers nothing, like a host cut
// off the network: connections do not fail, they hang. It returns the
// frozen pids for Thaw.
func (c *pgCluster) Freeze() ([]int, error) {
	pm, err := c.postmaster()
	if err != nil {
		return nil, err
	}
	// The postmaster first, so that it forks no new backend meanwhile.
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		return nil, err
	}
	pids := []int{pm}
	children, err := childrenOf(pm)
	if err != nil {
		return pids, err
	}
	for _, pid := range children {
		if syscall.Kill(pid, syscall.SIGSTOP) == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Thaw resumes (SIGCONT) the processes Freeze stopped.
func (c *pgCluster) Thaw(pids []int) {
	for i := len(pids) - 1; i >= 0; i-- {
		_ = syscall.Kill(pids[i], syscall.SIGCONT)
	}
}

// postmaster reads the postmaster's pid from its lock file.
func (c *pgCluster) postmaster() (int, error) {
	raw, err := os.ReadFile(filepath.Join(c.dir, "pgdata", "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("postmaster pid: %w", err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// alive reports whether pid is a process that has not exited (a zombie
// waiting for its parent counts as exited).
func alive(pid int) bool {
	st, err := procStat(pid)
	return err == nil && st.state != 'Z' && st.state != 'X'
}

type stat struct {
	state byte
	ppid  int
}

// procStat reads the state and parent of pid from /proc.
func procStat(pid int) (stat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %q", pid, raw)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %q", pid, raw)
	}
	ppid, err := strconv.Atoi(f[1])
	return stat{state: f[0][0], ppid: ppid}, err
}

// childrenOf lists the live processes whose parent is pid.
func childrenOf(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(p); err == nil && st.ppid == pid && st.state != 'Z' {
			out = append(out, p)
		}
	}
	return out, nil
}

// poll calls cond every 100 ms until it holds, ctx ends or timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("condition not met within %s", timeout)
		case <-tick.C:
		}
	}
	return nil
}

// tailFile returns the last n bytes of a file, for failure reports.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, 0)
	}
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}

package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/the-eye/eye/pkg/devstack"
)

// Cluster is a private Postgres cluster (pkg/devstack) that a suite can
// also restart, crash and freeze.
type Cluster struct {
	Dir     string // base directory; the cluster lives in Dir/pgdata
	Durable bool   // fsync, synchronous_commit and full_page_writes on
	port    int
	pg      *devstack.Postgres
}

// Start starts the cluster (initialising it the first time), on the port
// it had before if it ran already.
func (c *Cluster) Start(ctx context.Context) error {
	p, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{Dir: c.Dir, Port: c.port, Durable: c.Durable})
	if err != nil {
		return err
	}
	c.pg, c.port = p, p.Port()
	return nil
}

// Port is the TCP port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// LogSize is the size of the server log, so that LogSince can return what
// was logged after it.
func (c *Cluster) LogSize() int64 {
	fi, err := os.Stat(filepath.Join(c.Dir, "pgdata", "server.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LogSince returns the server log from byte offset off on (pg_ctl appends
// to one log across restarts).
func (c *Cluster) LogSince(off int64) string {
	f, err := os.Open(filepath.Join(c.Dir, "pgdata", "server.log"))
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
func (c *Cluster) DSN(db string) string { return c.pg.DSN(db) }

// Stop stops the cluster with pg_ctl's fast mode: sessions are terminated,
// a checkpoint is written.
func (c *Cluster) Stop() error { return c.pg.StopAlways() }

// Crash shuts the cluster down in PostgreSQL's immediate mode (SIGQUIT to
// the postmaster): every backend quits at once with no checkpoint, and the
// next start replays the WAL, as after a power loss of the process tree.
func (c *Cluster) Crash(ctx context.Context) error {
	pid, err := c.Postmaster()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
		return fmt.Errorf("SIGQUIT postmaster: %w", err)
	}
	pidFile := filepath.Join(c.Dir, "pgdata", "postmaster.pid")
	return Poll(ctx, 60*time.Second, func() bool {
		_, err := os.Stat(pidFile)
		return !Alive(pid) && errors.Is(err, os.ErrNotExist)
	})
}

// Freeze stops (SIGSTOP) the postmaster and every process it forked, so
// the server keeps its sockets open but answers nothing, like a host cut
// off the network: connections do not fail, they hang. It returns the
// frozen pids for Thaw.
func (c *Cluster) Freeze() ([]int, error) {
	pm, err := c.Postmaster()
	if err != nil {
		return nil, err
	}
	// The postmaster first, so that it forks no new backend meanwhile.
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		return nil, err
	}
	pids := []int{pm}
	children, err := ChildrenOf(pm)
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
func (c *Cluster) Thaw(pids []int) {
	for i := len(pids) - 1; i >= 0; i-- {
		_ = syscall.Kill(pids[i], syscall.SIGCONT)
	}
}

// Postmaster reads the postmaster's pid from its lock file.
func (c *Cluster) Postmaster() (int, error) {
	raw, err := os.ReadFile(filepath.Join(c.Dir, "pgdata", "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("postmaster pid: %w", err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

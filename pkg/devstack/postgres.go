// Package devstack starts the infrastructure The Eye needs on a developer's
// machine without Docker: a private Postgres cluster (from the machine's
// PostgreSQL binaries, or a build fetched once from Maven Central: see
// pgbin) and an in-process Kafka-protocol broker (kfake). Both `make run`
// and the tests use it.
package devstack

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/devstack/pgbin"
)

// Postgres is a private Postgres cluster run from the local binaries.
type Postgres struct {
	dataDir string
	port    int
	bin     string
	cred    *syscall.Credential // the unprivileged user to run as, when root
	started bool                // false when an already running cluster was reused
}

// PostgresOptions configure StartPostgres.
type PostgresOptions struct {
	Dir     string // base directory; the cluster lives in Dir/pgdata
	Port    int    // 0 picks a free port
	Durable bool   // false turns fsync off: fast, for throwaway test clusters
	// Bin is the directory of the server binaries; empty asks pgbin.Find,
	// which may download them, reporting progress on stderr.
	Bin string
}

// StartPostgres initialises (once) and starts a cluster under opts.Dir,
// with the binaries in opts.Bin or those pgbin.Find gives. When the process
// runs as root, the cluster runs as the "postgres" user (or "nobody"), since
// PostgreSQL refuses to run as root. A cluster already running in that
// directory is reused.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin := opts.Bin
	var err error
	if bin == "" {
		if bin, err = pgbin.Find(ctx, os.Stderr); err != nil {
			return nil, err
		}
	}
	p := &Postgres{dataDir: filepath.Join(opts.Dir, "pgdata"), port: opts.Port, bin: bin}
	if os.Geteuid() == 0 {
		if p.cred, err = unprivileged(); err != nil {
			return nil, err
		}
	}
	if err := p.prepare(opts.Dir); err != nil {
		return nil, err
	}
	if port, running := p.runningPort(); running {
		p.port = port
		return p, p.createDatabase(ctx, "eye")
	}
	if p.port == 0 {
		if p.port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	settings := []string{
		"-p", strconv.Itoa(p.port), "-k", p.dataDir, "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200", "-c", "shared_buffers=256MB",
	}
	if !opts.Durable {
		settings = append(settings, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	} else {
		// An ingest database writes WAL fast: with the default 1 GB, the
		// pipeline at 12 500 events/s checkpointed every 17 s (each
		// checkpoint then re-logs every page it touches in full), and
		// commits stalled behind it. Checkpoints then come from
		// checkpoint_timeout (5 min), spread over 90% of it.
		settings = append(settings, "-c", "max_wal_size=8GB")
	}
	if err := p.run(ctx, "pg_ctl", "-D", p.dataDir, "-l", filepath.Join(p.dataDir, "server.log"),
		"-o", strings.Join(settings, " "), "-w", "-t", "60", "start"); err != nil {
		logTail, _ := os.ReadFile(filepath.Join(p.dataDir, "server.log"))
		return nil, fmt.Errorf("%w\n%s", err, tail(logTail, 2000))
	}
	p.started = true
	if err := p.createDatabase(ctx, "eye"); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// prepare creates the directories with the right owners and runs initdb if
// the cluster does not exist yet.
func (p *Postgres) prepare(base string) error {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	// The unprivileged user must be able to reach the data directory.
	if err := os.Chmod(base, 0o755); err != nil {
		return err
	}
	if p.cred != nil {
		for _, path := range []string{base, p.bin} {
			if err := reachable(path); err != nil {
				return err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(p.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	if err := os.MkdirAll(p.dataDir, 0o700); err != nil {
		return err
	}
	if p.cred != nil {
		if err := os.Chown(p.dataDir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			return err
		}
	}
	return p.run(context.Background(), "initdb", "-D", p.dataDir, "-U", "eye", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
}

// runningPort reports the port of a cluster already running in dataDir.
func (p *Postgres) runningPort() (int, bool) {
	b, err := os.ReadFile(filepath.Join(p.dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, false
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, _ := strconv.Atoi(strings.TrimSpace(lines[3]))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0, false
	}
	return port, true
}

// DSN returns a connection string for database db.
func (p *Postgres) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User("eye"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Port is the TCP port the cluster listens on.
func (p *Postgres) Port() int { return p.port }

// Stop stops the cluster if this process started it.
func (p *Postgres) Stop() error {
	if !p.started {
		return nil
	}
	return p.StopAlways()
}

// StopAlways stops the cluster, even one another process started.
func (p *Postgres) StopAlways() error {
	p.started = false
	return p.run(context.Background(), "pg_ctl", "-D", p.dataDir, "-m", "fast", "-w", "stop")
}

// OpenDB connects to dsn, retrying until the server answers or ctx ends.
func OpenDB(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres open: %w", err)
	}
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		select {
		case <-ctx.Done():
			db.Close()
			return nil, fmt.Errorf("postgres ping: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (p *Postgres) createDatabase(ctx context.Context, name string) error {
	db, err := OpenDB(ctx, p.DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	var pe *pq.Error
	if err != nil && !(errors.As(err, &pe) && pe.Code == "42P04") { // duplicate_database
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func (p *Postgres) run(ctx context.Context, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, tool), args...)
	cmd.Dir = "/"
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	// pg_ctl start keeps the server's stdout open: never wait on a pipe.
	cmd.Stdout, cmd.Stderr = nil, nil
	out, err := os.CreateTemp("", "eye-pg-*.log")
	if err == nil {
		defer os.Remove(out.Name())
		defer out.Close()
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Run(); err != nil {
		var msg []byte
		if out != nil {
			msg, _ = os.ReadFile(out.Name())
		}
		return fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(string(msg)))
	}
	return nil
}

// reachable checks that every folder above path lets others through, as
// the unprivileged user PostgreSQL runs as must reach path.
func reachable(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("postgres runs as an unprivileged user, who cannot reach %s: chmod o+x %s", abs, dir)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")
}

// FreePort asks the kernel for a free TCP port on the loopback interface.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

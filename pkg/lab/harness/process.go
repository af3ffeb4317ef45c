package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/the-eye/eye/pkg/lab/stack"
)

// Process is one process (a service instance, or any helper binary) under
// a supervisor that behaves like docker-compose's `restart: on-failure`: a
// process that exits on its own is recorded as a crash and started again a
// second later (unless NoRestart). Exits the caller causes (Kill, Stop)
// are not crashes. Its output goes to LogPath, and to Output if set.
type Process struct {
	Name    string // e.g. "writer-2"
	Service string // service name, for exit reasons
	Bin     string // path of the binary
	Args    []string
	URL     string // http://127.0.0.1:port
	Env     []string
	LogPath string
	// Redact, if set, is removed from crash reasons (e.g. a topic prefix
	// that differs between runs), so that reasons group.
	Redact *regexp.Regexp
	// NoRestart leaves a crashed process down (the crash is still
	// recorded).
	NoRestart bool
	// Output, if set, also receives everything the process writes.
	Output io.Writer
	// OnCrash, if set, is called with the reason each time the process
	// exits on its own.
	OnCrash func(reason string)

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	gen      int           // incremented by every start
	intended bool          // the current process's exit is the suite's doing
	stopped  bool          // Stop was called: never start again
	restart  *time.Timer   // pending restart after a crash
	crashes  []crash
	wg       sync.WaitGroup // one waiter goroutine per process started
}

// Start starts the process.
func (i *Process) Start() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return fmt.Errorf("%s: stopped", i.Name)
	}
	return i.startLocked()
}

func (i *Process) startLocked() error {
	logf, err := os.OpenFile(i.LogPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== %s start %s\n", i.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(i.Bin, i.Args...)
	var out io.Writer = logf
	if i.Output != nil {
		out = io.MultiWriter(logf, i.Output)
	}
	cmd.Env, cmd.Stdout, cmd.Stderr = i.Env, out, out
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", i.Name, err)
	}
	i.gen++
	gen, exited := i.gen, make(chan struct{})
	i.cmd, i.exited, i.intended = cmd, exited, false
	i.wg.Add(1)
	go func() {
		defer i.wg.Done()
		err := cmd.Wait()
		fmt.Fprintf(logf, "==== %s exited %s: %v\n", i.Name, time.Now().UTC().Format(time.RFC3339Nano), err)
		logf.Close()
		i.mu.Lock()
		crashed := !i.intended && !i.stopped
		var reason string
		if crashed {
			reason = exitReason(i.LogPath, i.Service, i.Redact, err)
			i.crashes = append(i.crashes, crash{at: time.Now(), reason: reason})
			if !i.NoRestart {
				i.restart = time.AfterFunc(time.Second, func() {
					i.mu.Lock()
					defer i.mu.Unlock()
					if !i.stopped && i.gen == gen { // nobody started it meanwhile
						_ = i.startLocked()
					}
				})
			}
		}
		i.mu.Unlock()
		if crashed && i.OnCrash != nil {
			i.OnCrash(reason)
		}
		close(exited)
	}()
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone. Start it again
// with Start.
func (i *Process) Kill() {
	i.mu.Lock()
	i.intended = true
	if i.restart != nil {
		i.restart.Stop()
	}
	cmd, exited := i.cmd, i.exited
	i.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Pid is the current process's id (0 before Start).
func (i *Process) Pid() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd == nil || i.cmd.Process == nil {
		return 0
	}
	return i.cmd.Process.Pid
}

// Signal sends sig to the current process (SIGSTOP and SIGCONT freeze and
// resume it).
func (i *Process) Signal(sig syscall.Signal) {
	i.mu.Lock()
	cmd := i.cmd
	i.mu.Unlock()
	_ = cmd.Process.Signal(sig)
}

// Stop sends SIGTERM and waits up to 30 s for a clean exit (then SIGKILL).
// It returns an error when the process did not exit with status 0.
func (i *Process) Stop() error {
	i.mu.Lock()
	i.stopped, i.intended = true, true
	if i.restart != nil {
		i.restart.Stop()
	}
	cmd, exited := i.cmd, i.exited
	i.mu.Unlock()
	defer i.wg.Wait()
	select {
	case <-exited:
		return nil // it had crashed; that is recorded
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-exited:
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited with status %d on SIGTERM", i.Name, code)
		}
		return nil
	case <-timer.C:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		return fmt.Errorf("%s did not stop within 30 s of SIGTERM", i.Name)
	}
}

// crash is an exit the suite did not cause.
type crash struct {
	at     time.Time
	reason string // the error the process logged last, or its exit status
}

// Crashes summarises the times the process exited on its own, by reason.
func (i *Process) Crashes() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.crashes) == 0 {
		return nil
	}
	count := map[string]int{}
	var reasons []string
	for _, c := range i.crashes {
		if count[c.reason] == 0 {
			reasons = append(reasons, c.reason)
		}
		count[c.reason]++
	}
	out := []string{fmt.Sprintf("%s exited on its own %d× between %s and %s and was restarted each time",
		i.Name, len(i.crashes), i.crashes[0].at.Format("15:04:05"), i.crashes[len(i.crashes)-1].at.Format("15:04:05"))}
	for _, r := range reasons {
		out = append(out, fmt.Sprintf("%s: %d× %q", i.Name, count[r], r))
	}
	return out
}

// exitReason is the last line a service logged before exiting on its own
// ("<service>: <error>", as its main prints it), without what redact
// matches, or else the exit status.
func exitReason(logPath, service string, redact *regexp.Regexp, err error) string {
	reason := fmt.Sprint(err)
	for _, line := range strings.Split(stack.TailFile(logPath, 4096), "\n") {
		if strings.HasPrefix(line, service+": ") {
			reason = strings.TrimPrefix(line, service+": ")
		}
	}
	if redact != nil {
		reason = redact.ReplaceAllString(reason, "")
	}
	reason = localPortRE.ReplaceAllString(reason, "")
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	return reason
}

// localPortRE matches the local end of a connection in an error ("read tcp
// 127.0.0.1:41234->"), which differs every time.
var localPortRE = regexp.MustCompile(`127\.0\.0\.1:\d+->`)

// WaitReady polls GET /readyz until it answers 200.
func (i *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	err := stack.Poll(ctx, timeout, func() bool { return HTTPOK(ctx, i.URL+"/readyz") })
	if err != nil {
		return fmt.Errorf("%s not ready: %w\n%s", i.Name, err, stack.TailFile(i.LogPath, 3000))
	}
	return nil
}

// HTTPOK reports whether GET url answers 200 within 2 s.
func HTTPOK(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

package faults

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// instance is one service process under a supervisor that behaves like
// docker-compose's `restart: on-failure`: a process that exits on its own
// is recorded as a crash and started again a second later. Exits the suite
// causes (Kill, Stop) are not crashes.
type instance struct {
	name    string // e.g. "writer-2"
	service string // binary name
	url     string // http://127.0.0.1:port
	env     []string
	logPath string

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
func (i *instance) Start() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return fmt.Errorf("%s: stopped", i.name)
	}
	return i.startLocked()
}

func (i *instance) startLocked() error {
	logf, err := os.OpenFile(i.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== %s start %s\n", i.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(filepath.Join(binDir, i.service))
	cmd.Env, cmd.Stdout, cmd.Stderr = i.env, logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", i.name, err)
	}
	i.gen++
	gen, exited := i.gen, make(chan struct{})
	i.cmd, i.exited, i.intended = cmd, exited, false
	i.wg.Add(1)
	go func() {
		defer i.wg.Done()
		err := cmd.Wait()
		fmt.Fprintf(logf, "==== %s exited %s: %v\n", i.name, time.Now().UTC().Format(time.RFC3339Nano), err)
		logf.Close()
		i.mu.Lock()
		if !i.intended && !i.stopped {
			i.crashes = append(i.crashes, crash{at: time.Now(), reason: exitReason(i.logPath, i.service, err)})
			i.restart = time.AfterFunc(time.Second, func() {
				i.mu.Lock()
				defer i.mu.Unlock()
				if !i.stopped && i.gen == gen { // nobody started it meanwhile
					_ = i.startLocked()
				}
			})
		}
		i.mu.Unlock()
		close(exited)
	}()
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone. Start it again
// with Start.
func (i *instance) Kill() {
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

// Signal sends sig to the current process (SIGSTOP and SIGCONT freeze and
// resume it).
func (i *instance) Signal(sig syscall.Signal) {
	i.mu.Lock()
	cmd := i.cmd
	i.mu.Unlock()
	_ = cmd.Process.Signal(sig)
}

// Stop sends SIGTERM and waits up to 30 s for a clean exit (then SIGKILL).
// It returns an error when the process did not exit with status 0.
func (i *instance) Stop() error {
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
			return fmt.Errorf("%s exited with status %d on SIGTERM", i.name, code)
		}
		return nil
	case <-timer.C:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		return fmt.Errorf("%s did not stop within 30 s of SIGTERM", i.name)
	}
}

// crash is an exit the suite did not cause.
type crash struct {
	at     time.Time
	reason string // the error the process logged last, or its exit status
}

// Crashes summarises the times the process exited on its own, by reason.
func (i *instance) Crashes() []string {
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
		i.name, len(i.crashes), i.crashes[0].at.Format("15:04:05"), i.crashes[len(i.crashes)-1].at.Format("15:04:05"))}
	for _, r := range reasons {
		out = append(out, fmt.Sprintf("%s: %d× %q", i.name, count[r], r))
	}
	return out
}

// exitReason is the last line a service logged before exiting on its own
// ("<service>: <error>", as its main prints it), without the scenario's
// topic prefix, or else the exit status.
func exitReason(logPath, service string, err error) string {
	reason := fmt.Sprint(err)
	for _, line := range strings.Split(tailFile(logPath, 4096), "\n") {
		if strings.HasPrefix(line, service+": ") {
			reason = strings.TrimPrefix(line, service+": ")
		}
	}
	reason = prefixRE.ReplaceAllString(reason, "")
	reason = localPortRE.ReplaceAllString(reason, "")
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	return reason
}

// prefixRE matches a scenario's topic prefix, so that reasons group.
var prefixRE = regexp.MustCompile(`faults\.[a-z-]+\.[0-9a-f]+\.`)

// localPortRE matches the local end of a connection in an error ("read tcp
// 127.0.0.1:41234->"), which differs every time.
var localPortRE = regexp.MustCompile(`127\.0\.0\.1:\d+->`)

// WaitReady polls GET /readyz until it answers 200.
func (i *instance) WaitReady(ctx context.Context, timeout time.Duration) error {
	err := poll(ctx, timeout, func() bool { return httpOK(ctx, i.url+"/readyz") })
	if err != nil {
		return fmt.Errorf("%s not ready: %w\n%s", i.name, err, tailFile(i.logPath, 3000))
	}
	return nil
}

// httpOK reports whether GET url answers 200 within 2 s.
func httpOK(ctx context.Context, url string) bool {
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

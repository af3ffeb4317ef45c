package stack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Alive reports whether pid is a process that has not exited (a zombie
// waiting for its parent counts as exited).
func Alive(pid int) bool {
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

// ChildrenOf lists the live processes whose parent is pid.
func ChildrenOf(pid int) ([]int, error) {
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

// Poll calls cond every 100 ms until it holds, ctx ends or timeout passes.
func Poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
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

// TailFile returns the last n bytes of a file, for failure reports.
func TailFile(path string, n int64) string {
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

// CPUTime is the CPU time (user and system) pid has used, with that of
// its children it has waited for when children is true, read from
// /proc/pid/stat.
func CPUTime(pid int, children bool) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, raw)
	}
	// After "pid (comm)": state is field 3; utime, stime, cutime, cstime
	// are fields 14 to 17, i.e. indexes 11 to 14 here.
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, raw)
	}
	last := 12
	if children {
		last = 14
	}
	var ticks int64
	for k := 11; k <= last; k++ {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

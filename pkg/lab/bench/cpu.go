package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/lab/stack"
)

// cpuGroup reads the CPU time a group of processes has used so far.
type cpuGroup func() time.Duration

// selfCPU is the benchmark process's own CPU time: the load generator,
// and the in-process physical limits (raw relay, raw COPY client).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func procCPU(pid func() int) cpuGroup {
	return func() time.Duration {
		d, _ := stack.CPUTime(pid(), false)
		return d
	}
}

// postgresCPU is the cluster's postmaster (with the backends it reaped)
// and its live children.
func (b *Bench) postgresCPU() time.Duration {
	pm, err := b.pg.Postmaster()
	if err != nil {
		return 0
	}
	total, _ := stack.CPUTime(pm, true)
	children, _ := stack.ChildrenOf(pm)
	for _, c := range children {
		d, _ := stack.CPUTime(c, false)
		total += d
	}
	return total
}

// machineCPU reads /proc/stat: busy and total jiffies of all CPUs.
func machineCPU() (busy, total uint64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	for k, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if k >= 8 { // guest time is already counted in user
			break
		}
		total += n
		if k != 3 && k != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// groups names the process groups a phase is measured with.
func (b *Bench) groups(br *broker, p *pipeline, names ...string) map[string]cpuGroup {
	out := map[string]cpuGroup{}
	for _, n := range names {
		switch n {
		case "generator":
			out[n] = selfCPU
		case "broker":
			out[n] = procCPU(br.pid)
		case "postgres":
			out[n] = b.postgresCPU
		default:
			if proc := p.Instance(harness.Service(n)); proc != nil {
				out[n] = procCPU(proc.Pid)
			}
		}
	}
	return out
}

// Cores is how many cores each group used on average during a phase, and
// the machine as a whole ("machine"; the rest of it is "other work": other
// processes on the machine, e.g. other engineers' builds and tests).
type Cores map[string]float64

// measure runs fn and returns the cores each group and the machine used.
func measure(groups map[string]cpuGroup, fn func() error) (Cores, error) {
	before := map[string]time.Duration{}
	for n, g := range groups {
		before[n] = g()
	}
	busy0, total0 := machineCPU()
	start := time.Now()
	err := fn()
	wall := time.Since(start).Seconds()
	busy1, total1 := machineCPU()
	out := Cores{}
	var ours float64
	for n, g := range groups {
		c := (g() - before[n]).Seconds() / wall
		out[n] = c
		ours += c
	}
	if total1 > total0 {
		machine := float64(busy1-busy0) / float64(total1-total0) * float64(cpus())
		out["machine"] = machine
		out["other work"] = max(0, machine-ours)
	}
	return out, err
}

func cpus() int {
	n := 0
	if raw, err := os.ReadFile("/proc/stat"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(line, "cpu") && len(line) > 3 && line[3] >= '0' && line[3] <= '9' {
				n++
			}
		}
	}
	return max(n, 1)
}

// String lists the groups (largest first), then the machine.
func (c Cores) String() string {
	if len(c) == 0 {
		return ""
	}
	var names []string
	for n := range c {
		if n != "machine" && n != "other work" {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return c[names[i]] > c[names[j]] })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", n, c[n]))
	}
	s := "cores: " + strings.Join(parts, ", ")
	if m, ok := c["machine"]; ok {
		s += fmt.Sprintf("; machine %.2f of %d busy, other work %.2f", m, cpus(), c["other work"])
	}
	return s
}

// apachePid reads the broker JVM's pid.
func apachePid(k *stack.Broker) func() int {
	return func() int {
		raw, err := os.ReadFile(filepath.Join(k.Data(), "kafka.pid"))
		if err != nil {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		return pid
	}
}

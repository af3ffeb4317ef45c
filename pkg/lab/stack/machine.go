package stack

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// Machine describes the machine the stack runs on: CPU model, cores,
// memory, OS and kernel, for instance "AMD EPYC 7763 64-Core Processor,
// 2 cores (nproc), 23.5 GiB RAM; Debian GNU/Linux 12 (bookworm), Linux
// 6.1.0-18-amd64". What cannot be read is left out (or "unknown CPU").
func Machine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := ""
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
				break
			}
		}
	}
	osName := runtime.GOOS
	if raw, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				osName = strings.Trim(v, `"`)
			}
		}
	}
	var u syscall.Utsname
	kernel := ""
	if syscall.Uname(&u) == nil {
		var rel []byte
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			rel = append(rel, byte(c))
		}
		kernel = ", Linux " + string(rel)
	}
	return fmt.Sprintf("%s, %d cores (nproc)%s; %s%s", cpu, runtime.NumCPU(), mem, osName, kernel)
}

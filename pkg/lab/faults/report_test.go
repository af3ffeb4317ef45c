package faults

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/the-eye/eye/pkg/lab/stack"
	"github.com/the-eye/eye/pkg/pg"
)

// The generated part of docs/reliability.md lies between these markers.
const (
	docBegin = "<!-- BEGIN test-faults results: written by `make test-faults`, do not edit by hand -->"
	docEnd   = "<!-- END test-faults results -->"
)

type report struct {
	table string // printed
	doc   string // written between the markers
}

// report renders the results as a Markdown table with the run's context.
func (s *suite) report(elapsed time.Duration) report {
	var tb strings.Builder
	tb.WriteString("| scenario | faults injected | acknowledged | lost | duplicated | out of order | recovery (worst) | drain after load | result |\n")
	tb.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range s.results {
		verdict := "pass"
		if !r.Passed() {
			verdict = "**FAIL**"
		}
		fmt.Fprintf(&tb, "| %s | %s | %d | %d | %d | %d | %s | %s | %s |\n", r.Name, r.Faults, r.Verdict.Acked,
			r.Verdict.Lost, r.Verdict.Duplicated, r.Verdict.OutOfOrder(), secs(r.Worst()), secs(r.Drain), verdict)
	}
	table := tb.String()

	var b strings.Builder
	b.WriteString(docBegin + "\n\n## Latest run\n\n")
	fmt.Fprintf(&b, "- **When**: %s, services built from %s\n", s.start.UTC().Format("2006-01-02 15:04 MST"), builtFrom)
	fmt.Fprintf(&b, "- **Command**: `make test-faults`; the whole suite took %s\n", elapsed.Round(time.Second))
	fmt.Fprintf(&b, "- **Machine**: %s; the broker, Postgres, every service process and the load generator share it\n", stack.Machine())
	fmt.Fprintf(&b, "- **Versions**: %s\n", s.versions())
	fmt.Fprintf(&b, "- **Load**: %.0f events/s offered by %d client sessions (half single-event requests, half JSON arrays of 10), "+
		"one request in flight per session; %s undisturbed before the first fault and after the last recovery\n\n",
		s.cfg.rate, s.cfg.sessions, secs(s.cfg.steady))
	b.WriteString(table)
	b.WriteString("\n### Details\n\n")
	for _, r := range s.results {
		fmt.Fprintf(&b, "**%s** (%s, %.0f acknowledged events/s on average):\n\n", r.Name, r.Elapsed.Round(time.Second), r.Rate)
		var recs []string
		for _, rc := range r.Recoveries {
			recs = append(recs, fmt.Sprintf("%s %s", rc.What, secs(rc.Took)))
		}
		if len(recs) > 0 {
			fmt.Fprintf(&b, "- recovery: %s\n", strings.Join(recs, "; "))
		}
		v := r.Verdict
		fmt.Fprintf(&b, "- order: %d out of order on the raw topic, %d on the valid-events topic, %d by stored received_at\n",
			v.RawOutOfOrder, v.ValidOutOfOrder, v.ReceivedOutOfOrder)
		if v.IDMismatch+v.Phantom+v.CountMismatch+v.ErrorRecords > 0 {
			fmt.Fprintf(&b, "- integrity: %d stored under another id, %d rows never sent, %d sessions with a wrong event_count, %d error records %v\n",
				v.IDMismatch, v.Phantom, v.CountMismatch, v.ErrorRecords, v.ErrorReasons)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		for _, c := range r.Crashes {
			fmt.Fprintf(&b, "- crash (restarted by the supervisor): %s\n", c)
		}
		for _, e := range r.Errs {
			fmt.Fprintf(&b, "- failure: %s\n", firstLine(e))
		}
		for _, p := range v.Problems {
			fmt.Fprintf(&b, "- problem: %s\n", p)
		}
		b.WriteString("\n")
	}
	b.WriteString(docEnd)
	return report{table: table, doc: b.String()}
}

// writeDoc replaces the generated part of docs/reliability.md
// (EYE_FAULTS_DOC names another file; "-" writes none).
func writeDoc(generated string) error {
	path := os.Getenv("EYE_FAULTS_DOC")
	if path == "-" {
		return nil
	}
	if path == "" {
		path = filepath.Join(repoRoot, "docs", "reliability.md")
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(old, []byte(docBegin)), bytes.Index(old, []byte(docEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s lacks the markers %q … %q", path, docBegin, docEnd)
	}
	var out bytes.Buffer
	out.Write(old[:i])
	out.WriteString(generated)
	out.Write(old[j+len(docEnd):])
	return os.WriteFile(path, out.Bytes(), 0o644)
}

func secs(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// versions names Go, Kafka, Java, Postgres and kafka-go as run.
func (s *suite) versions() string {
	kafkaVersion := s.brk.Version()
	java := "unknown"
	if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
		java = firstLine(string(out))
	}
	pgVersion := "unknown"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if db, err := pg.Open(ctx, s.pg.DSN("postgres")); err == nil {
		_ = db.GetContext(ctx, &pgVersion, "SELECT current_setting('server_version')")
		db.Close()
	}
	kafkaGo := "unknown"
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/segmentio/kafka-go")
	cmd.Dir = filepath.Join(repoRoot, "pkg")
	if out, err := cmd.Output(); err == nil {
		kafkaGo = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s; Apache Kafka %s (KRaft, one node, scripts/kafka.sh; %s); PostgreSQL %s (fsync and synchronous_commit on); kafka-go %s",
		runtime.Version(), kafkaVersion, java, pgVersion, kafkaGo)
}

// gitDescribe names the commit checked out, and whether the code the
// service binaries are built from (services/, pkg/ but the suite itself)
// differs from it.
func gitDescribe() string {
	out, err := exec.Command("git", "-C", repoRoot, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "commit unknown"
	}
	desc := "commit " + strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", repoRoot, "status", "--porcelain", "--untracked-files=no", "--",
		"services", "pkg", ":(exclude)pkg/lab/faults").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		desc += " with uncommitted changes to services/ or pkg/"
	}
	return desc
}

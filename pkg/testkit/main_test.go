package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// childEnv makes the test binary a child of TestMainRemovesTempDirs: its
// TestMain makes a TempDir, writes its path to the file the variable names
// and runs Main, which ends with os.Exit.
const childEnv = "EYE_TESTKIT_TEMPDIR_CHILD"

func TestMain(m *testing.M) {
	if out := os.Getenv(childEnv); out != "" {
		dir, err := TempDir("eye-testkit-child-")
		if err != nil {
			panic(err)
		}
		if err := os.WriteFile(out, []byte(dir), 0o600); err != nil {
			panic(err)
		}
	}
	Main(m, nil)
}

// A TestMain's own deferred cleanup never runs (Main exits the process):
// directories made with TempDir are removed by Main before it exits.
func TestMainRemovesTempDirs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dir")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, b)
	}
	dir, err := os.ReadFile(out)
	if err != nil || len(dir) == 0 {
		t.Fatalf("child wrote no directory: %v", err)
	}
	if _, err := os.Stat(string(dir)); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the child exited (stat: %v)", dir, err)
		os.RemoveAll(string(dir))
	}
}

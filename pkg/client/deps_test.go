package client_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An application that imports the SDK inherits its module graph: it must
// hold what the SDK needs (uuid) and none of the pipeline's dependencies.
func TestImportingTheSDKBringsNoPipelineDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program with the go command")
	}
	sdk, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	app := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/app\n\ngo 1.26\n\nrequire github.com/the-eye/eye/pkg/client v0.0.0\n\nreplace github.com/the-eye/eye/pkg/client => " + sdk + "\n",
		"main.go": `package main

import "github.com/the-eye/eye/pkg/client"

func main() { _, _ = client.New(client.Config{}) }
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(app, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goCmd := func(args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir = app
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	goCmd("mod", "tidy")
	goCmd("build", "-o", os.DevNull, ".")
	mods := goCmd("list", "-m", "all")
	for _, banned := range []string{"kafka", "gin-gonic", "testcontainers", "gonum", "kfake", "franz-go", "lib/pq", "sqlx", "prometheus", "docker"} {
		if strings.Contains(mods, banned) {
			t.Errorf("the SDK's module graph holds %q:\n%s", banned, mods)
		}
	}
	if !strings.Contains(mods, "github.com/google/uuid") {
		t.Errorf("uuid missing from the SDK's module graph:\n%s", mods)
	}
}

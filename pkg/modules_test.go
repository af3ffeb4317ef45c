// Package pkg_test checks the boundaries of the runtime-library module.
package pkg_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The runtime libraries go into every service binary: nothing they import
// may come from the test and benchmark lab (pkg/lab), the test kit, the
// development stack or their dependencies. Their own tests may use those.
func TestRuntimeLibrariesImportNothingTestOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, banned := range []string{
		"github.com/the-eye/eye/pkg/lab", "github.com/the-eye/eye/pkg/testkit", "github.com/the-eye/eye/pkg/devstack",
		"github.com/testcontainers", "github.com/twmb/franz-go", "gonum.org", "github.com/getkin/kin-openapi",
	} {
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("a runtime library depends on %s", dep)
				break
			}
		}
	}
}

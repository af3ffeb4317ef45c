package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/the-eye/eye/pkg/auth"
)

// An older keys.env (write and read keys only) keeps its keys and gains an
// admin key; each generated key has its scope's prefix.
func TestDevKeysAddsAdminKeyToOldKeysFile(t *testing.T) {
	home := t.TempDir()
	old := "EYE_DEV_WRITE_KEY=eye_w_saved\nEYE_DEV_READ_KEY=eye_r_saved\n"
	if err := os.WriteFile(filepath.Join(home, "keys.env"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := devKeys(home, auth.DevKeys{})
	if err != nil {
		t.Fatal(err)
	}
	if keys.Write != "eye_w_saved" || keys.Read != "eye_r_saved" || !strings.HasPrefix(keys.Admin, "eye_a_") {
		t.Fatalf("keys %+v", keys)
	}
	again, err := devKeys(home, auth.DevKeys{})
	if err != nil || again != keys {
		t.Fatalf("second start: %+v %v, want %+v", again, err, keys)
	}
	fresh, err := devKeys(t.TempDir(), auth.DevKeys{Read: "eye_r_from_env"})
	if err != nil || !strings.HasPrefix(fresh.Write, "eye_w_") || fresh.Read != "eye_r_from_env" || !strings.HasPrefix(fresh.Admin, "eye_a_") {
		t.Fatalf("fresh home: %+v %v", fresh, err)
	}
}

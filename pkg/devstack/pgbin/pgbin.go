// Package pgbin finds the PostgreSQL server binaries (initdb, pg_ctl,
// postgres) that devstack runs. They come from, in order: EYE_POSTGRES_BIN,
// the machine's own installation (PATH, then Debian's
// /usr/lib/postgresql/<major>/bin), or, when the machine has none, a real
// PostgreSQL build fetched once from Maven Central (the
// io.zonky.test.postgres:embedded-postgres-binaries-* jars, which carry a
// .txz of a PostgreSQL installation), checksum-verified and unpacked into a
// cache folder. So Go is the only prerequisite of `make run` and `make test`.
package pgbin

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ulikunitz/xz"
)

// FetchOnly is the EYE_POSTGRES_BIN value that skips the machine's own
// binaries and always uses the fetched build (CI proves with it that a
// machine without PostgreSQL works).
const FetchOnly = "fetch"

// Find returns the directory holding initdb, pg_ctl and postgres.
// EYE_POSTGRES_BIN names it outright (or is FetchOnly); otherwise the
// machine's newest installation wins, and only when there is none is the
// default build fetched (once; later calls reuse the cache), reporting
// progress to progress.
func Find(ctx context.Context, progress io.Writer) (string, error) {
	switch dir := os.Getenv("EYE_POSTGRES_BIN"); dir {
	case FetchOnly:
	case "":
		if dir, ok := onMachine(); ok {
			return dir, nil
		}
	default:
		return dir, nil
	}
	d, err := Default()
	if err != nil {
		return "", err
	}
	return d.Fetch(ctx, progress)
}

// onMachine finds the newest PostgreSQL server binaries installed on the
// machine: initdb on PATH, else Debian's versioned directories.
func onMachine() (string, bool) {
	if path, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(path), true
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", false
	}
	major := func(initdb string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
		return v
	}
	sort.Slice(matches, func(i, j int) bool { return major(matches[i]) > major(matches[j]) })
	return filepath.Dir(matches[0]), true
}

// Dist is one PostgreSQL build in a Maven repository.
type Dist struct {
	Repo    string // repository base URL, e.g. https://repo1.maven.org/maven2
	Arch    string // the artifact's platform: linux-amd64, linux-arm64v8
	Version string // e.g. 17.12.0
	// SHA256 is the jar's expected SHA-256 (hex), checked on top of the
	// checksum the repository serves, so that a mirror serving another jar
	// with a matching checksum file is refused too. Empty trusts the
	// repository's checksum alone.
	SHA256 string
	Cache  string       // folder builds are unpacked under, one subfolder each
	Client *http.Client // nil: http.DefaultClient
}

// builds are the default build per GOARCH: the newest 17.x Maven Central
// serves for that platform, with the SHA-256 of its jar.
var builds = map[string]struct{ arch, version, sha256 string }{
	"amd64": {"linux-amd64", "17.12.0", "7a8951dc117490f2d4161600836c8b1055306aff86e0a472aad55457651e5cbd"},
	"arm64": {"linux-arm64v8", "17.11.0", "8b042e0ea418b1927d95399207950da0734d27fe01e29503ade3bdc464ad4c2b"},
}

// Default is the pinned build for this machine, from EYE_MAVEN_REPO
// (default Maven Central) into CacheDir.
func Default() (Dist, error) {
	b, ok := builds[runtime.GOARCH]
	if runtime.GOOS != "linux" || !ok {
		return Dist{}, fmt.Errorf("no PostgreSQL server binaries found and none to fetch for %s/%s: install PostgreSQL (initdb, pg_ctl), set EYE_POSTGRES_BIN to their directory, or set EYE_POSTGRES_DSN", runtime.GOOS, runtime.GOARCH)
	}
	repo := os.Getenv("EYE_MAVEN_REPO")
	if repo == "" {
		repo = "https://repo1.maven.org/maven2"
	}
	cache, err := CacheDir()
	if err != nil {
		return Dist{}, err
	}
	return Dist{Repo: repo, Arch: b.arch, Version: b.version, SHA256: b.sha256, Cache: cache}, nil
}

// CacheDir is where fetched builds live: EYE_POSTGRES_CACHE, else
// <user cache dir>/eye/postgres ($XDG_CACHE_HOME or ~/.cache). Root's home
// is usually closed to the unprivileged user PostgreSQL then runs as, so
// root uses /var/cache/eye/postgres instead.
func CacheDir() (string, error) {
	if dir := os.Getenv("EYE_POSTGRES_CACHE"); dir != "" {
		return filepath.Abs(dir)
	}
	if os.Geteuid() == 0 {
		return "/var/cache/eye/postgres", nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("PostgreSQL download cache: %w (set EYE_POSTGRES_CACHE)", err)
	}
	return filepath.Join(base, "eye", "postgres"), nil
}

// URL is the address of the build's jar; suffix ".sha256" gives its checksum file.
func (d Dist) URL(suffix string) string {
	name := "embedded-postgres-binaries-" + d.Arch
	return strings.TrimSuffix(d.Repo, "/") + "/io/zonky/test/postgres/" + name + "/" + d.Version + "/" + name + "-" + d.Version + ".jar" + suffix
}

// Fetch returns the bin directory of the build, downloading, verifying and
// unpacking it first unless the cache has it. Concurrent callers (test
// binaries run in parallel) wait for one download.
func (d Dist) Fetch(ctx context.Context, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	dir := filepath.Join(d.Cache, d.Version+"-"+d.Arch)
	bin := filepath.Join(dir, "bin")
	if complete(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(d.Cache, 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(filepath.Join(d.Cache, d.Version+"-"+d.Arch+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if complete(bin) { // another process fetched it while we waited
		return bin, nil
	}
	start := time.Now()
	jar, size, err := d.download(ctx, progress)
	if err != nil {
		return "", err
	}
	defer os.Remove(jar)
	downloaded := time.Now()
	fmt.Fprintf(progress, "postgres: unpacking into %s\n", dir)
	tmp, err := os.MkdirTemp(d.Cache, ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := unpack(jar, tmp); err != nil {
		return "", fmt.Errorf("unpack %s: %w", d.URL(""), err)
	}
	if !complete(filepath.Join(tmp, "bin")) {
		return "", fmt.Errorf("%s holds no bin/initdb, bin/pg_ctl, bin/postgres", d.URL(""))
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it 0700
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "postgres: PostgreSQL %s ready in %s (%.1f MB downloaded in %s, SHA-256 verified, unpacked in %s)\n",
		d.Version, dir, float64(size)/1e6, downloaded.Sub(start).Round(100*time.Millisecond), time.Since(downloaded).Round(100*time.Millisecond))
	return bin, nil
}

func complete(bin string) bool {
	for _, tool := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			return false
		}
	}
	return true
}

// lock takes an exclusive lock on path, held until the returned func runs.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// download saves the jar to a temporary file in the cache after checking
// its SHA-256 against the repository's checksum file and the pinned one.
func (d Dist) download(ctx context.Context, progress io.Writer) (path string, size int64, err error) {
	served, err := d.get(ctx, d.URL(".sha256"))
	if err != nil {
		return "", 0, err
	}
	sumBytes, err := io.ReadAll(io.LimitReader(served.Body, 1024))
	served.Body.Close()
	if err != nil {
		return "", 0, err
	}
	want := strings.ToLower(firstField(string(sumBytes)))
	if len(want) != 64 {
		return "", 0, fmt.Errorf("%s: not a SHA-256: %q", d.URL(".sha256"), sumBytes)
	}
	if d.SHA256 != "" && want != d.SHA256 {
		return "", 0, fmt.Errorf("%s says %s, but this build is pinned to %s: refusing it", d.URL(".sha256"), want, d.SHA256)
	}

	res, err := d.get(ctx, d.URL(""))
	if err != nil {
		return "", 0, err
	}
	defer res.Body.Close()
	fmt.Fprintf(progress, "postgres: fetching PostgreSQL %s (%s) from %s\n", d.Version, d.Arch, d.URL(""))
	f, err := os.CreateTemp(d.Cache, ".download-*.jar")
	if err != nil {
		return "", 0, err
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	pr := &progressReader{r: res.Body, total: res.ContentLength, w: progress, last: time.Now()}
	if size, err = io.Copy(io.MultiWriter(f, h), pr); err != nil {
		return "", 0, fmt.Errorf("download %s: %w", d.URL(""), err)
	}
	pr.report()
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", 0, fmt.Errorf("download %s: SHA-256 %s, but the repository says %s: refusing it", d.URL(""), got, want)
	}
	return f.Name(), size, f.Close()
}

func (d Dist) get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return res, nil
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// progressEvery is how often a download reports its progress (tests shorten it).
const defaultProgressEvery = 2 * time.Second

var progressEvery = defaultProgressEvery

// progressReader reports bytes read (and the percentage, when the length is
// known) every progressEvery.
type progressReader struct {
	r     io.Reader
	total int64
	n     int64
	w     io.Writer
	last  time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if time.Since(p.last) >= progressEvery {
		p.report()
	}
	return n, err
}

func (p *progressReader) report() {
	p.last = time.Now()
	if p.total > 0 {
		fmt.Fprintf(p.w, "postgres: %.1f of %.1f MB (%d%%)\n", float64(p.n)/1e6, float64(p.total)/1e6, p.n*100/p.total)
		return
	}
	fmt.Fprintf(p.w, "postgres: %.1f MB\n", float64(p.n)/1e6)
}

// unpack extracts the .txz inside the jar into dst.
func unpack(jar, dst string) error {
	zr, err := zip.OpenReader(jar)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".txz") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		xr, err := xz.NewReader(bufio.NewReader(rc))
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		return untar(tar.NewReader(xr), dst)
	}
	return errors.New("no .txz archive in the jar")
}

// untar writes the archive's directories, files and links under dst,
// refusing any entry that would land outside it. Everything is made
// readable (and directories and executables reachable) by all users: the
// unprivileged user PostgreSQL runs as must use the tree.
func untar(tr *tar.Reader, dst string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !filepath.IsLocal(h.Name) {
			return fmt.Errorf("entry %q leaves the archive's folder", h.Name)
		}
		path := filepath.Join(dst, h.Name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(path, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			if err := writeFile(path, tr, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if filepath.IsAbs(h.Linkname) || !filepath.IsLocal(filepath.Join(filepath.Dir(h.Name), h.Linkname)) {
				return fmt.Errorf("link %q -> %q leaves the archive's folder", h.Name, h.Linkname)
			}
			if err := os.Symlink(h.Linkname, path); err != nil {
				return err
			}
		case tar.TypeLink:
			if !filepath.IsLocal(h.Linkname) {
				return fmt.Errorf("link %q -> %q leaves the archive's folder", h.Name, h.Linkname)
			}
			if err := os.Link(filepath.Join(dst, h.Linkname), path); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q: unsupported type %q", h.Name, h.Typeflag)
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(path, mode) // the umask does not apply to the tree's readers
}

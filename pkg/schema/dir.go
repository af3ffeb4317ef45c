package schema

import (
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// ReadDir reads the schemas of a directory tree laid out as
// <category>/<name>/<version>.json (e.g. "page interaction/pageview/1.json"),
// category and name being path-unescaped (so "%2F" stands for a "/" they
// contain) and version a positive integer. Every such file is compiled;
// files not ending in .json are ignored, a .json file elsewhere is an error.
// The schemas come sorted by type, then version.
func ReadDir(fsys fs.FS) ([]*Schema, error) {
	var out []*Schema
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("schema dir: %w", err)
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		parts := strings.Split(p, "/")
		if len(parts) != 3 {
			return fmt.Errorf("schema dir: %s: want <category>/<name>/<version>.json", p)
		}
		category, err1 := url.PathUnescape(parts[0])
		name, err2 := url.PathUnescape(parts[1])
		version, err3 := strconv.Atoi(strings.TrimSuffix(parts[2], path.Ext(parts[2])))
		if err1 != nil || err2 != nil || err3 != nil || version < 1 {
			return fmt.Errorf("schema dir: %s: want <category>/<name>/<version>.json with a positive integer version", p)
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("schema dir: %w", err)
		}
		s, err := Compile(category, name, version, src)
		if err != nil {
			return fmt.Errorf("schema dir: %s: %w", p, err)
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *Schema) int {
		switch {
		case a.Category != b.Category:
			return compare(a.Category, b.Category)
		case a.Name != b.Name:
			return compare(a.Name, b.Name)
		}
		return a.Version - b.Version
	})
	return out, nil
}

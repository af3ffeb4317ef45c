package schemas

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/the-eye/eye/pkg/schema"
)

// LoadDir stores the schemas of dir (EYE_SCHEMA_DIR, laid out as
// <category>/<name>/<version>.json, see schema.ReadDir). It is idempotent:
// a version already stored with the same content is left as it is; one
// stored with other content is an error (ErrConflict), as is a file that
// does not compile. It returns how many versions it added. The Publisher
// puts the added versions on the schemas topic.
func LoadDir(ctx context.Context, store Store, dir string) (added int, err error) {
	if _, err := os.Stat(dir); err != nil {
		return 0, fmt.Errorf("schema dir: %w", err)
	}
	all, err := schema.ReadDir(os.DirFS(dir))
	if err != nil {
		return 0, err
	}
	for _, s := range all {
		inserted, err := store.Put(ctx, s)
		if errors.Is(err, ErrConflict) {
			return added, fmt.Errorf("%w (from %s): versions are immutable, add the change as a new version", err, dir)
		}
		if err != nil {
			return added, err
		}
		if inserted {
			added++
		}
	}
	return added, nil
}

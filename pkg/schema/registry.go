package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/the-eye/eye/pkg/event"
)

// Lookup errors.
var (
	// ErrNoSchema: the type has no schema at all.
	ErrNoSchema = errors.New("no schema for this event type")
	// ErrUnknownVersion: the type has schemas, but not this version.
	ErrUnknownVersion = errors.New("no such schema version")
)

// Registry holds the schemas a validator applies, by type and version. It
// is safe for concurrent use: a Follower writes while the relay reads.
type Registry struct {
	mu    sync.RWMutex
	types map[Type][]*Schema // each sorted by version
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{types: make(map[Type][]*Schema)} }

// Put adds s, replacing the schema of the same type and version if there
// is one (versions are immutable, so that is the same schema published
// again).
func (r *Registry) Put(s *Schema) {
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := r.types[s.Type]
	i, found := slices.BinarySearchFunc(vs, s.Version, func(x *Schema, v int) int { return x.Version - v })
	if found {
		vs[i] = s
		return
	}
	r.types[s.Type] = slices.Insert(vs, i, s)
}

// Remove drops a version (a deletion marker on the schemas topic).
func (r *Registry) Remove(t Type, version int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	vs := r.types[t]
	i, found := slices.BinarySearchFunc(vs, version, func(x *Schema, v int) int { return x.Version - v })
	if !found {
		return
	}
	if vs = slices.Delete(vs, i, i+1); len(vs) == 0 {
		delete(r.types, t)
	} else {
		r.types[t] = vs
	}
}

// Lookup returns version of t's schema, or its latest version when version
// is 0. It fails with ErrNoSchema or ErrUnknownVersion.
func (r *Registry) Lookup(t Type, version int) (*Schema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.types[t]
	if len(vs) == 0 {
		return nil, ErrNoSchema
	}
	if version == 0 {
		return vs[len(vs)-1], nil
	}
	i, found := slices.BinarySearchFunc(vs, version, func(x *Schema, v int) int { return x.Version - v })
	if !found {
		return nil, fmt.Errorf("%w: %s has no version %d (latest: %d)", ErrUnknownVersion, t, version, vs[len(vs)-1].Version)
	}
	return vs[i], nil
}

// Ref identifies a schema version in listings.
type Ref struct {
	Category string `json:"category"`
	Name     string `json:"name"`
	Version  int    `json:"version"`
}

// Refs lists every version held, by type, then version.
func (r *Registry) Refs() []Ref {
	r.mu.RLock()
	out := make([]Ref, 0, len(r.types))
	for t, vs := range r.types {
		for _, s := range vs {
			out = append(out, Ref{t.Category, t.Name, s.Version})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Ref) int {
		switch {
		case a.Category != b.Category:
			return compare(a.Category, b.Category)
		case a.Name != b.Name:
			return compare(a.Name, b.Name)
		}
		return a.Version - b.Version
	})
	return out
}

func compare(a, b string) int {
	if a < b {
		return -1
	}
	return 1
}

// ServeHTTP lists the versions held as {"results": [{category, name,
// version}, …]}: what this process validates with right now.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(struct {
		Results []Ref `json:"results"`
	}{r.Refs()}) // a failed write to the client: nothing to do
}

// Result is what the registry says about one event.
type Result struct {
	// Schema is the version that applied; nil when none did.
	Schema *Schema
	// Reasons are the schema's complaints: schema_violation,
	// unknown_schema_version, invalid_field for a malformed
	// schema_version. Empty when the event conforms.
	Reasons event.Reasons
	// Untyped reports that the event's type has no schema at all: accepted
	// unchecked, unless the application has strict types (UnknownType).
	Untyped bool
}

// Check applies the registry to a decoded event document: the schema of
// its type (category, name) in the version its schema_version names, or the
// latest, validates its data. Category, name and data that are missing or
// malformed are left to event.Rules: the schema is not applied then, and
// Check reports nothing about them.
func (r *Registry) Check(obj map[string]json.RawMessage) Result {
	var res Result
	version, named := 0, false
	if raw, ok := obj[VersionField]; ok && string(raw) != "null" {
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 1 {
			res.Reasons = append(res.Reasons, event.Reason{Code: event.CodeInvalidField, Field: "/" + VersionField,
				Message: VersionField + " must be a positive integer"})
		} else {
			version, named = n, true
		}
	}
	t, ok := typeOf(obj)
	if !ok {
		return res
	}
	s, err := r.Lookup(t, version)
	switch {
	case errors.Is(err, ErrNoSchema):
		res.Untyped = true
		if named {
			res.Reasons = append(res.Reasons, event.Reason{Code: event.CodeUnknownSchemaVersion, Field: "/" + VersionField,
				Message: fmt.Sprintf("%s has no schema, so no version %d", t, version)})
		}
		return res
	case err != nil:
		res.Reasons = append(res.Reasons, event.Reason{Code: event.CodeUnknownSchemaVersion, Field: "/" + VersionField, Message: err.Error()})
		return res
	}
	if len(res.Reasons) > 0 { // a malformed schema_version: no version applies
		return res
	}
	res.Schema = s
	if data, ok := obj["data"]; ok && len(data) > 0 && data[0] == '{' {
		res.Reasons = s.Validate(data)
	}
	return res
}

// UnknownType is the reason for an event of a type without a schema when
// the application has strict types.
func UnknownType(obj map[string]json.RawMessage) event.Reason {
	t, _ := typeOf(obj)
	return event.Reason{Code: event.CodeUnknownEventType, Message: fmt.Sprintf("event type %s has no schema, and the application accepts only types that have one", t)}
}

// typeOf reads the category and name of an event document when both are
// non-empty strings.
func typeOf(obj map[string]json.RawMessage) (Type, bool) {
	var t Type
	if json.Unmarshal(obj["category"], &t.Category) != nil || json.Unmarshal(obj["name"], &t.Name) != nil ||
		t.Category == "" || t.Name == "" {
		return Type{}, false
	}
	return t, true
}

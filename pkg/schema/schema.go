// Package schema is The Eye's registry of JSON Schemas per event type: a
// type is a (category, name) pair, and each type has versions 1, 2, …,
// immutable once added. A schema validates an event's data object.
//
// Schemas are compiled with github.com/santhosh-tekuri/jsonschema/v6
// (draft 2020-12 unless the schema names another with $schema; formats are
// asserted). A schema cannot load anything: references to other documents
// (files, URLs) are refused when it is compiled, only references inside the
// schema ("#/$defs/…") work.
//
// query-api stores schemas in Postgres and publishes each version on the
// compacted schemas topic; every validator follows that topic (Follower)
// into its in-memory Registry, which Check applies to each event. See
// docs/schemas.md.
package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
)

// MaxViolations caps the schema_violation reasons reported for one event;
// the last one says how many more there were.
const MaxViolations = 20

// MaxTextLength bounds a category or name, as event.Rules does.
const MaxTextLength = 255

// VersionField is the event field that names the schema version the event
// follows.
const VersionField = "schema_version"

// ErrInvalid marks a schema that cannot be accepted: it does not compile,
// or its category, name or version is not valid.
var ErrInvalid = errors.New("invalid schema")

// Type is an event type.
type Type struct {
	Category string
	Name     string
}

// String names the type as "category/name", e.g. "page interaction/pageview".
func (t Type) String() string { return t.Category + "/" + t.Name }

// Schema is one compiled version of a type's schema.
type Schema struct {
	Type
	Version int
	// Source is the schema document, compacted.
	Source json.RawMessage

	compiled *jsonschema.Schema
}

// Ref names the version, e.g. "page interaction/pageview/2".
func (s *Schema) Ref() string { return s.Type.String() + "/" + strconv.Itoa(s.Version) }

// Key is the version's record key on the schemas topic.
func (s *Schema) Key() string { return contract.SchemaKey(s.Category, s.Name, s.Version) }

// CheckType reports whether category and name are a valid type: non-empty
// strings of at most MaxTextLength characters, as events' are.
func CheckType(category, name string) error {
	for _, f := range []struct{ field, v string }{{"category", category}, {"name", name}} {
		if n := utf8.RuneCountInString(f.v); n == 0 || n > MaxTextLength || !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s must be 1..%d characters", ErrInvalid, f.field, MaxTextLength)
		}
	}
	return nil
}

// Compile checks and compiles version of the schema of category/name from
// its JSON document src. An error wraps ErrInvalid and carries the
// compiler's message.
func Compile(category, name string, version int, src []byte) (*Schema, error) {
	if err := CheckType(category, name); err != nil {
		return nil, err
	}
	if version < 1 {
		return nil, fmt.Errorf("%w: version must be 1 or more", ErrInvalid)
	}
	src = bytes.TrimSpace(src)
	if len(src) == 0 || (src[0] != '{' && !bytes.Equal(src, []byte("true")) && !bytes.Equal(src, []byte("false"))) {
		return nil, fmt.Errorf("%w: a schema is a JSON object (or true/false)", ErrInvalid)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalid, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	loc := "urn:the-eye:schema:" + contract.SchemaKey(category, name, version)
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	compiled, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, src); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalid, err) // unreachable: decoded above
	}
	return &Schema{Type: Type{category, name}, Version: version, Source: compact.Bytes(), compiled: compiled}, nil
}

// noLoader refuses every external reference: a schema posted to the API
// must not make The Eye read files or fetch URLs.
type noLoader struct{}

// Load implements jsonschema.URLLoader by refusing url.
func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: schemas cannot reference other documents; use $defs inside the schema", url)
}

var printer = message.NewPrinter(language.English)

// Validate checks data (an event's data object) against the schema: nil
// when it conforms, otherwise one schema_violation reason per failing leaf
// of the validation (for required and additionalProperties, one per
// property), with the JSON pointer of the failing value under /data, at
// most MaxViolations.
func (s *Schema) Validate(data json.RawMessage) event.Reasons {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return event.Reasons{{Code: event.CodeSchemaViolation, Field: "/data", Message: "data is not valid JSON"}}
	}
	err = s.compiled.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return event.Reasons{{Code: event.CodeSchemaViolation, Field: "/data", Message: err.Error()}}
	}
	var out event.Reasons
	more := 0
	add := func(loc []string, msg string) {
		if len(out) < MaxViolations {
			out = append(out, event.Reason{Code: event.CodeSchemaViolation, Field: "/data" + pointer(loc), Message: event.Truncate(msg, maxMessage)})
		} else {
			more++
		}
	}
	leaves(ve, func(e *jsonschema.ValidationError) {
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			for _, p := range k.Missing {
				add(append(slices.Clip(e.InstanceLocation), p), (&kind.Required{Missing: []string{p}}).LocalizedString(printer))
			}
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				add(append(slices.Clip(e.InstanceLocation), p), (&kind.AdditionalProperties{Properties: []string{p}}).LocalizedString(printer))
			}
		default:
			add(e.InstanceLocation, e.ErrorKind.LocalizedString(printer))
		}
	})
	if more > 0 {
		out[len(out)-1].Message += fmt.Sprintf(" (and %d more violations)", more)
	}
	if len(out) == 0 { // a failure without leaves: report it whole
		out = event.Reasons{{Code: event.CodeSchemaViolation, Field: "/data" + pointer(ve.InstanceLocation), Message: ve.ErrorKind.LocalizedString(printer)}}
	}
	return out
}

// maxMessage bounds a violation's message in bytes: messages may quote the
// failing value (e.g. a string that does not match a pattern).
const maxMessage = 300

// leaves calls f for every error of the tree that has no causes, in order.
func leaves(e *jsonschema.ValidationError, f func(*jsonschema.ValidationError)) {
	if len(e.Causes) == 0 {
		f(e)
		return
	}
	for _, c := range e.Causes {
		leaves(c, f)
	}
}

// pointer renders tokens as a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

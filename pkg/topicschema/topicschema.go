// Package topicschema checks Kafka records against the published contract of
// The Eye's topics: the JSON Schema (draft 2020-12) of each envelope in
// docs/schemas/topics/ and the headers of each message in the AsyncAPI
// document, docs/asyncapi.yaml. The contract package's tests check those
// documents against the Go envelopes and the golden files; the end-to-end
// tests check every record a real run writes.
//
// It is stricter than a consumer needs to be: besides the schemas it
// requires every reason code to be one The Eye knows today (the schemas let
// unknown codes through, since new ones may appear within version 1).
package topicschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/the-eye/eye/pkg/contract"
)

// DeadLetterMessage is the AsyncAPI message name of a dead-letter record,
// which has no envelope type of its own.
const DeadLetterMessage = "dead_letter"

// Paths of the documents, relative to the repository's docs/ directory.
const (
	AsyncAPIFile = "asyncapi.yaml"
	SchemaDir    = "schemas/topics"
)

// SchemaFile is the JSON Schema file of envelope type typ, relative to the
// docs/ directory, e.g. "schemas/topics/event.v1.json".
func SchemaFile(typ string) string {
	return fmt.Sprintf("%s/%s.v%d.json", SchemaDir, typ, contract.Version)
}

// Checker validates records against the documents it was loaded from.
type Checker struct {
	envelopes map[string]*jsonschema.Schema // by envelope type
	knownCode *jsonschema.Schema            // the error schema's $defs/knownReasonCode
	headers   map[string]*jsonschema.Schema // by AsyncAPI message name
	keys      map[string]*jsonschema.Schema // by AsyncAPI message name
}

// Load compiles the JSON Schema of every envelope type the AsyncAPI document
// under docsDir names (its messages other than DeadLetterMessage), and the
// header and key schemas (the Kafka binding's) of every message.
func Load(docsDir string) (*Checker, error) {
	doc, err := LoadAsyncAPI(filepath.Join(docsDir, AsyncAPIFile))
	if err != nil {
		return nil, err
	}
	messages, err := Messages(doc)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	ck := &Checker{envelopes: map[string]*jsonschema.Schema{}, headers: map[string]*jsonschema.Schema{}, keys: map[string]*jsonschema.Schema{}}
	for _, name := range sortedKeys(messages) {
		msg := messages[name]
		loc := "urn:the-eye:asyncapi:headers:" + name
		if err := c.AddResource(loc, msg["headers"]); err != nil {
			return nil, fmt.Errorf("topicschema: headers of %s: %w", name, err)
		}
		if ck.headers[name], err = c.Compile(loc); err != nil {
			return nil, fmt.Errorf("topicschema: headers of %s: %w", name, err)
		}
		bindings, _ := msg["bindings"].(map[string]any)
		kafka, _ := bindings["kafka"].(map[string]any)
		if kafka["key"] == nil {
			return nil, fmt.Errorf("topicschema: message %s has no Kafka key binding", name)
		}
		loc = "urn:the-eye:asyncapi:key:" + name
		if err := c.AddResource(loc, kafka["key"]); err != nil {
			return nil, fmt.Errorf("topicschema: key of %s: %w", name, err)
		}
		if ck.keys[name], err = c.Compile(loc); err != nil {
			return nil, fmt.Errorf("topicschema: key of %s: %w", name, err)
		}
		if name == DeadLetterMessage {
			continue
		}
		f, err := os.Open(filepath.Join(docsDir, SchemaFile(name)))
		if err != nil {
			return nil, fmt.Errorf("topicschema: %w", err)
		}
		schema, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("topicschema: %s: %w", SchemaFile(name), err)
		}
		id, _ := schema.(map[string]any)["$id"].(string)
		if id == "" {
			return nil, fmt.Errorf("topicschema: %s has no $id", SchemaFile(name))
		}
		if err := c.AddResource(id, schema); err != nil {
			return nil, fmt.Errorf("topicschema: %s: %w", SchemaFile(name), err)
		}
		if ck.envelopes[name], err = c.Compile(id); err != nil {
			return nil, fmt.Errorf("topicschema: %s: %w", SchemaFile(name), err)
		}
		if name == contract.TypeError {
			if ck.knownCode, err = c.Compile(id + "#/$defs/knownReasonCode"); err != nil {
				return nil, fmt.Errorf("topicschema: %s: %w", SchemaFile(name), err)
			}
		}
	}
	if ck.knownCode == nil {
		return nil, fmt.Errorf("topicschema: %s has no %s message", AsyncAPIFile, contract.TypeError)
	}
	return ck, nil
}

// LoadAsyncAPI reads an AsyncAPI document (YAML or JSON) into the generic
// form jsonschema.UnmarshalJSON gives: maps, slices, strings, json.Number,
// bool, nil.
func LoadAsyncAPI(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("topicschema: %w", err)
	}
	var y any
	if err := yaml.Unmarshal(b, &y); err != nil {
		return nil, fmt.Errorf("topicschema: %s: %w", path, err)
	}
	// Through JSON, so the values have the shapes jsonschema works with
	// (json.Number for numbers).
	j, err := json.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("topicschema: %s: %w", path, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return nil, fmt.Errorf("topicschema: %s: %w", path, err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("topicschema: %s is not an object", path)
	}
	return doc, nil
}

// Messages returns the document's components.messages by name.
func Messages(doc map[string]any) (map[string]map[string]any, error) {
	components, _ := doc["components"].(map[string]any)
	raw, _ := components["messages"].(map[string]any)
	if len(raw) == 0 {
		return nil, fmt.Errorf("topicschema: the AsyncAPI document has no components.messages")
	}
	out := make(map[string]map[string]any, len(raw))
	for name, m := range raw {
		msg, ok := m.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("topicschema: message %s is not an object", name)
		}
		out[name] = msg
	}
	return out, nil
}

// Types lists the envelope types the checker knows, sorted.
func (c *Checker) Types() []string { return sortedKeys(c.envelopes) }

// Value checks an envelope of type typ against its JSON Schema, and every
// reason code of an error record against the codes The Eye knows.
func (c *Checker) Value(typ string, value []byte) error {
	sch := c.envelopes[typ]
	if sch == nil {
		return fmt.Errorf("no JSON Schema for envelope type %q", typ)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return err
	}
	if typ != contract.TypeError {
		return nil
	}
	reasons, _ := inst.(map[string]any)["reasons"].([]any)
	for i, r := range reasons {
		code := r.(map[string]any)["code"]
		if err := c.knownCode.Validate(code); err != nil {
			return fmt.Errorf("reasons/%d: code %v is not a known reason code: %w", i, code, err)
		}
	}
	return nil
}

// Headers checks a record's headers against those the AsyncAPI document
// declares for message (an envelope type or DeadLetterMessage).
func (c *Checker) Headers(message string, headers map[string]string) error {
	sch := c.headers[message]
	if sch == nil {
		return fmt.Errorf("no AsyncAPI message %q", message)
	}
	inst := make(map[string]any, len(headers))
	for k, v := range headers {
		inst[k] = v
	}
	return sch.Validate(inst)
}

// Key checks a record's key (nil: no key) against the Kafka key binding the
// AsyncAPI document declares for message.
func (c *Checker) Key(message string, key []byte) error {
	sch := c.keys[message]
	if sch == nil {
		return fmt.Errorf("no AsyncAPI message %q", message)
	}
	var inst any // null
	if key != nil {
		inst = string(key)
	}
	return sch.Validate(inst)
}

// Record checks a record of an envelope topic: its headers and key against
// the message its eye-type header names, and its value against that type's
// JSON Schema.
func (c *Checker) Record(headers map[string]string, key, value []byte) error {
	typ := headers[contract.HeaderType]
	if err := c.Headers(typ, headers); err != nil {
		return fmt.Errorf("headers: %w", err)
	}
	if err := c.Key(typ, key); err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	if err := c.Value(typ, value); err != nil {
		return fmt.Errorf("value: %w", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

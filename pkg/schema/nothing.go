package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrAcceptsNothing marks a schema that no event's data can satisfy: adding
// it as a type's latest version would turn every later event of the type
// into an error record.
var ErrAcceptsNothing = errors.New("the schema accepts no event")

// CheckAcceptsSomething returns an error wrapping ErrAcceptsNothing, saying
// why, when src (a schema document for an event's data, which is always a
// JSON object) provably accepts nothing. It detects what is cheap and
// certain, not every such schema: false; "not" of an always-true schema;
// an empty enum; a type, const or enum that excludes objects at the root; a
// const or enum that contradicts the type beside it; minProperties over
// maxProperties; a required property whose schema accepts nothing; and
// these through allOf (one branch accepting nothing) and anyOf/oneOf (every
// branch). References ($ref) are not followed. A src that is not JSON is
// left to Compile.
func CheckAcceptsSomething(src []byte) error {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil
	}
	if why := nothing(doc, "", true); why != "" {
		return fmt.Errorf("%w: %s", ErrAcceptsNothing, why)
	}
	return nil
}

// nothing says why the schema s at JSON pointer at accepts no value (no
// object when object is set), or "" when it cannot tell.
func nothing(s any, at string, object bool) string {
	where := func(msg string) string {
		if at == "" {
			return msg
		}
		return at + ": " + msg
	}
	switch s := s.(type) {
	case bool:
		if !s {
			return where("the schema is false")
		}
		return ""
	case map[string]any:
		return nothingObject(s, at, object, where)
	}
	return ""
}

func nothingObject(s map[string]any, at string, object bool, where func(string) string) string {
	if not, ok := s["not"]; ok && acceptsAll(not) {
		return where(`"not" of a schema that accepts everything`)
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, v := range t {
			if v, ok := v.(string); ok {
				types = append(types, v)
			}
		}
		if len(types) == 0 {
			return where("type is an empty list")
		}
	}
	if object && types != nil && !slices.Contains(types, "object") {
		return where(fmt.Sprintf("type %v excludes objects, and an event's data is always an object", types))
	}
	allowed := func(v any) bool {
		if object && jsonType(v) != "object" {
			return false
		}
		return types == nil || typeAllows(types, v)
	}
	if c, ok := s["const"]; ok && !allowed(c) {
		return where(fmt.Sprintf("const is a %s, which the type %v (or an event's data, an object) excludes", jsonType(c), orAny(types)))
	}
	if e, ok := s["enum"].([]any); ok {
		if len(e) == 0 {
			return where("enum is empty")
		}
		if !slices.ContainsFunc(e, allowed) {
			return where(fmt.Sprintf("no enum value is of the type %v (or an object, as an event's data is)", orAny(types)))
		}
	}
	minP, hasMin := count(s["minProperties"])
	maxP, hasMax := count(s["maxProperties"])
	if hasMin && hasMax && minP > maxP {
		return where(fmt.Sprintf("minProperties %g is over maxProperties %g", minP, maxP))
	}
	props, _ := s["properties"].(map[string]any)
	if req, ok := s["required"].([]any); ok {
		if hasMax && float64(len(req)) > maxP {
			return where(fmt.Sprintf("%d properties are required but maxProperties is %g", len(req), maxP))
		}
		for _, r := range req {
			name, _ := r.(string)
			if p, ok := props[name]; ok {
				if why := nothing(p, at+"/properties/"+pointerToken(name), false); why != "" {
					return why + fmt.Sprintf(" (and %q is required)", name)
				}
			}
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for i, sub := range all {
			if why := nothing(sub, fmt.Sprintf("%s/allOf/%d", at, i), object); why != "" {
				return why
			}
		}
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if subs, ok := s[k].([]any); ok && len(subs) > 0 {
			var whys []string
			for i, sub := range subs {
				why := nothing(sub, fmt.Sprintf("%s/%s/%d", at, k, i), object)
				if why == "" {
					break
				}
				whys = append(whys, why)
			}
			if len(whys) == len(subs) {
				return where(fmt.Sprintf("no branch of %s accepts anything (%s)", k, whys[0]))
			}
		}
	}
	return ""
}

// acceptsAll reports whether s is true or {} (an empty schema).
func acceptsAll(s any) bool {
	switch s := s.(type) {
	case bool:
		return s
	case map[string]any:
		return len(s) == 0
	}
	return false
}

// jsonType is the JSON Schema type name of a decoded value: "integer" for
// numbers without a fractional part.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if f, err := v.Float64(); err == nil && f == math.Trunc(f) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return ""
}

// typeAllows reports whether a value v is of one of types.
func typeAllows(types []string, v any) bool {
	t := jsonType(v)
	return slices.Contains(types, t) || t == "integer" && slices.Contains(types, "number")
}

func orAny(types []string) any {
	if types == nil {
		return "any"
	}
	return types
}

// count reads a non-negative count keyword.
func count(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// pointerToken escapes a JSON pointer token (RFC 6901).
func pointerToken(t string) string { return pointer([]string{t})[1:] }

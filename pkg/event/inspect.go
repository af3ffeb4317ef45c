package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Inspect finds what JSON allows but an event must not carry: bytes that are
// not UTF-8, NUL characters (Postgres jsonb refuses \u0000), numbers beyond
// float64, and duplicate keys (whose meaning differs between parsers). It
// reports the first problem, with the JSON pointer where it is. payload must
// be valid JSON.
func Inspect(payload []byte) *Reason {
	if clean(payload) {
		return nil
	}
	return inspect(payload)
}

// inspect is Inspect's careful path, token by token, which locates the
// problem; clean vouches for most documents much faster.
func inspect(payload []byte) *Reason {
	if !utf8.Valid(payload) {
		return &Reason{Code: CodeInvalidUTF8, Message: "the document is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool
		key     string
		index   int
	}
	var stack []*frame
	// pointer locates the current value; keyPointer locates key in the
	// object being read, whose own last key is stale.
	pointer := func(last string) string {
		var b strings.Builder
		for _, f := range stack {
			b.WriteByte('/')
			if f.object {
				b.WriteString(escapePointer(f.key))
			} else {
				b.WriteString(strconv.Itoa(f.index))
			}
		}
		if last != "" {
			b.WriteByte('/')
			b.WriteString(escapePointer(last))
		}
		return b.String()
	}
	keyPointer := func(key string) string {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := pointer(key)
		stack = append(stack, top)
		return p
	}
	// value is called after a complete value inside the top frame.
	value := func() {
		if n := len(stack); n > 0 {
			if f := stack[n-1]; f.object {
				f.wantKey = true
			} else {
				f.index++
			}
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &Reason{Code: CodeInvalidJSON, Message: err.Error()}
		}
		top := (*frame)(nil)
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				value()
				continue
			}
			key := tok.(string) // the decoder guarantees a string key here
			if strings.ContainsRune(key, 0) {
				return &Reason{Code: CodeNulCharacter, Field: keyPointer(key), Message: "keys must not contain NUL (\\u0000)"}
			}
			if top.keys[key] {
				return &Reason{Code: CodeDuplicateKey, Field: keyPointer(key), Message: fmt.Sprintf("key %q appears more than once", Truncate(key, 64))}
			}
			top.keys[key] = true
			top.key, top.wantKey = key, false
			continue
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true})
			case '[':
				stack = append(stack, &frame{})
			case '}', ']':
				stack = stack[:len(stack)-1]
				value()
			}
		case string:
			if strings.ContainsRune(t, 0) {
				return &Reason{Code: CodeNulCharacter, Field: pointer(""), Message: "strings must not contain NUL (\\u0000)"}
			}
			value()
		case json.Number:
			if _, err := strconv.ParseFloat(t.String(), 64); err != nil {
				return &Reason{Code: CodeInvalidNumber, Field: pointer(""), Message: fmt.Sprintf("number %s is beyond the range of a 64-bit float", Truncate(t.String(), 32))}
			}
			value()
		default:
			value()
		}
	}
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

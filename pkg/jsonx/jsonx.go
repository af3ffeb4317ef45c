// Package jsonx parses JSON on the hot paths (every event passes through
// it several times) with github.com/segmentio/encoding/json, ≈ 6× faster
// than encoding/json, without changing what any input means: wherever the
// fast parser refuses an input, encoding/json decides, and the fuzz targets
// here and in pkg/contract check that the two agree on every input the
// fast one accepts.
package jsonx

import (
	"encoding/json"
	"reflect"

	fast "github.com/segmentio/encoding/json"
)

// Unmarshal is json.Unmarshal: v is decoded by the fast parser or, when it
// refuses data, by encoding/json from a zeroed v.
func Unmarshal(data []byte, v any) error {
	if fast.Unmarshal(data, v) == nil {
		return nil
	}
	if p := reflect.ValueOf(v); p.Kind() == reflect.Pointer && !p.IsNil() {
		p.Elem().Set(reflect.Zero(p.Elem().Type()))
	}
	return json.Unmarshal(data, v)
}

// Marshal is json.Marshal, byte for byte, for values without a
// json.RawMessage that is not valid JSON: the fast encoder does not
// validate raw values (it encodes "0 0" as 0), so callers with raw fields
// check them with Valid first (pkg/contract.Encode does, and its FuzzEncode
// compares the bytes with encoding/json's on every envelope). A value the
// fast encoder refuses gets encoding/json's answer.
func Marshal(v any) ([]byte, error) {
	if b, err := fast.Marshal(v); err == nil {
		return b, nil
	}
	return json.Marshal(v)
}

// Valid is json.Valid.
func Valid(data []byte) bool {
	return fast.Valid(data) || json.Valid(data)
}

// AppendCompact appends src, which must be valid JSON, to dst without its
// insignificant whitespace: json.Compact for valid input, without the
// bytes.Buffer and the validation pass.
func AppendCompact(dst, src []byte) []byte {
	inString, escaped := false, false
	for _, c := range src {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			dst = append(dst, c)
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			inString = true
		}
		dst = append(dst, c)
	}
	return dst
}

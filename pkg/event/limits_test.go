package event

import (
	"strings"
	"testing"
)

func TestDepthExceeds(t *testing.T) {
	tests := []struct {
		doc  string
		max  int
		want bool
	}{
		{`{"a":{"b":[1]}}`, 3, false},
		{`{"a":{"b":[1]}}`, 2, true},
		{`{"a":"{{{{[[[["}`, 1, false},
		{`{"a":"\"{{"}`, 1, false},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), 64, true},
		{`[]`, 1, false},
	}
	for _, tt := range tests {
		if got := DepthExceeds([]byte(tt.doc), tt.max); got != tt.want {
			t.Errorf("DepthExceeds(%s, %d) = %v", tt.doc, tt.max, got)
		}
	}
}

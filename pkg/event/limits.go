package event

// DepthExceeds reports whether the JSON document b nests arrays and objects
// deeper than max. It scans bytes without decoding, skipping strings, so it
// is cheap enough for the gateway's hot path; b need not be valid JSON.
func DepthExceeds(b []byte, max int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

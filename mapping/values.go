package mapping

import (
	"encoding/json"
	"fmt"
)

// Limits on what an event may carry. Decode rejects, with a reason, every
// event that storage or rendering would refuse later, so that such an event
// is a dead letter at once instead of a batch that fails on every retry.
const (
	// MaxDepth bounds the nesting of objects and arrays in traits,
	// properties and context, the field's own object counting as one level.
	// Segment's own payloads nest a few levels. Go's decoder stops at 10,000
	// levels; below that Postgres stores them, but every level costs stack
	// and time on each read and rewrite of the value, so Prechat keeps well
	// below.
	MaxDepth = 64
	// MaxObjectBytes bounds each of traits, properties and context: the
	// bytes of its keys and values as sent. It equals the Segment HTTP
	// Tracking API's limit for a whole event.
	MaxObjectBytes = 32 << 10
	// MaxNumberDigits bounds a number's digits before and after the decimal
	// point, written out in full as Postgres's jsonb stores it (numeric has no
	// exponent: 1e300 is stored as 301 digits). Every float64 fits (at most
	// 309 digits before the point, 340 after); Postgres itself refuses more
	// than 131,072 before or 16,383 after (1e200000: "value overflows numeric
	// format"), and would store an 8-byte 1e131071 as 128 KiB.
	MaxNumberDigits = 400
)

// checkValues rejects an event whose values storage or rendering would
// refuse: in traits, properties and context, numbers Postgres cannot hold,
// invalid Unicode escapes, NUL characters, and more nesting or bytes than
// the limits above. (Times need no check here: an event's time is bounded to
// a window around its record time, see Policy.Admit.)
func (e *Event) checkValues() error {
	for _, o := range []struct {
		name string
		obj  Object
	}{{"traits", e.Traits}, {"properties", e.Properties}} {
		size := 0
		for k, v := range o.obj {
			size += len(k) + len(v) + len(`"":,`)
			if problem := checkJSON(v, 1); problem != "" {
				return invalidEvent("%s.%s %s", o.name, truncate(k), problem)
			}
		}
		if size > MaxObjectBytes {
			return invalidEvent("%s is larger than %d bytes", o.name, MaxObjectBytes)
		}
	}
	if len(e.Context) > MaxObjectBytes {
		return invalidEvent("context is larger than %d bytes", MaxObjectBytes)
	}
	if problem := checkJSON(e.Context, 0); problem != "" {
		return invalidEvent("context %s", problem)
	}
	return nil
}

// checkJSON scans one syntactically valid JSON value that starts at nesting
// depth (the levels around it) and says what Postgres's jsonb or the
// limits refuse in it, or "" when nothing. It is one pass over the bytes,
// without decoding.
func checkJSON(raw json.RawMessage, depth int) string {
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case c == '"':
			end, problem := checkString(raw, i)
			if problem != "" {
				return problem
			}
			i = end
		case c == '{' || c == '[':
			if depth++; depth > MaxDepth {
				return fmt.Sprintf("is nested deeper than %d levels", MaxDepth)
			}
			i++
		case c == '}' || c == ']':
			depth--
			i++
		case c == '-' || isDigit(c):
			end := i + 1
			for end < len(raw) && (isDigit(raw[end]) || raw[end] == '.' || raw[end] == 'e' || raw[end] == 'E' || raw[end] == '+' || raw[end] == '-') {
				end++
			}
			if !numberFits(raw[i:end]) {
				return fmt.Sprintf("holds the number %s, out of range: numbers may have at most %d digits before and %d after the decimal point, written out in full",
					truncate(string(raw[i:end])), MaxNumberDigits, MaxNumberDigits)
			}
			i = end
		default: // white space, separators, true, false, null
			i++
		}
	}
	return ""
}

// checkString scans the string whose opening quote is at raw[start] and
// returns the index after its closing quote. Postgres's json and jsonb
// refuse a \u escape of a lone UTF-16 surrogate (Go decodes it to U+FFFD)
// and text cannot hold U+0000.
func checkString(raw []byte, start int) (end int, problem string) {
	for i := start + 1; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			return i + 1, ""
		case '\\':
			i++
			if i >= len(raw) || raw[i] != 'u' {
				continue
			}
			r := hex4(raw, i+1)
			i += 4
			switch {
			case r == 0:
				return 0, `contains a NUL character (\u0000), which Postgres cannot store`
			case r >= 0xDC00 && r <= 0xDFFF:
				return 0, fmt.Sprintf(`contains an invalid Unicode escape (\u%04x, a lone low surrogate), which Postgres cannot store`, r)
			case r >= 0xD800 && r <= 0xDBFF:
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if lo := hex4(raw, i+3); lo >= 0xDC00 && lo <= 0xDFFF {
						i += 6
						continue
					}
				}
				return 0, fmt.Sprintf(`contains an invalid Unicode escape (\u%04x, a high surrogate without its low half), which Postgres cannot store`, r)
			}
		}
	}
	return len(raw), ""
}

// hex4 reads the four hex digits at raw[i:], or returns -1.
func hex4(raw []byte, i int) int {
	if i+4 > len(raw) {
		return -1
	}
	v := 0
	for _, c := range raw[i : i+4] {
		switch {
		case isDigit(c):
			v = v*16 + int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v*16 + int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v*16 + int(c-'A'+10)
		default:
			return -1
		}
	}
	return v
}

// numberFits reports whether a JSON number, written out in full as
// Postgres's numeric stores it, has at most MaxNumberDigits digits before
// and after the decimal point. It follows numeric's input rule: the scale
// (digits after the point) is the fraction's digits minus the exponent, at
// least 0, even when the value is zero ("0.0e-99999" is refused), and an
// exponent of 2^30−1 or more in size is refused whatever the digits.
func numberFits(lit []byte) bool {
	i := 0
	if i < len(lit) && lit[i] == '-' {
		i++
	}
	intStart := i
	for i < len(lit) && isDigit(lit[i]) {
		i++
	}
	intPart := lit[intStart:i]
	var frac []byte
	if i < len(lit) && lit[i] == '.' {
		i++
		fracStart := i
		for i < len(lit) && isDigit(lit[i]) {
			i++
		}
		frac = lit[fracStart:i]
	}
	var exp int64
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		negative := i < len(lit) && lit[i] == '-'
		if i < len(lit) && (lit[i] == '-' || lit[i] == '+') {
			i++
		}
		for ; i < len(lit) && isDigit(lit[i]); i++ {
			exp = min(exp*10+int64(lit[i]-'0'), 1<<40) // far past any limit, never overflowing
		}
		if negative {
			exp = -exp
		}
	}
	const maxExponent = 1<<30 - 1 // numeric refuses larger exponents, even of zero
	if exp >= maxExponent || exp <= -maxExponent || max(int64(len(frac))-exp, 0) > MaxNumberDigits {
		return false
	}
	first := -1 // the first significant digit, counted in intPart then frac
	for k, c := range intPart {
		if c != '0' {
			first = k
			break
		}
	}
	for k := 0; first < 0 && k < len(frac); k++ {
		if frac[k] != '0' {
			first = len(intPart) + k
		}
	}
	if first < 0 {
		return true // zero
	}
	// The first significant digit stands for 10^(len(intPart)-1-first+exp).
	return int64(len(intPart)-first)+exp <= MaxNumberDigits
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

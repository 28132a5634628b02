package mapping_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/prechat/prechat/mapping"
)

// TestDecodeNumberLimits: a number is accepted when, written out in full as
// Postgres's jsonb stores it, it has at most MaxNumberDigits digits before
// and after the decimal point; the rest are dead letters. The boundaries
// need literals a JSON case file cannot compare (float64 overflows).
func TestDecodeNumberLimits(t *testing.T) {
	t.Parallel()
	digits := func(n int) string { return "1" + strings.Repeat("0", n-1) }
	tests := []struct {
		lit string
		ok  bool
	}{
		{"1e399", true}, {"9.99e399", true}, {"-9.99E+399", true}, {"1e400", false}, {"10e399", false},
		{digits(400), true}, {digits(401), false}, {"0.5e400", true}, {"0.05e401", true},
		{"1e-400", true}, {"1e-401", false}, {"1.5e-399", true}, {"1.55e-399", false},
		{"0." + strings.Repeat("0", 399) + "1", true}, {"0." + strings.Repeat("0", 400) + "1", false},
		{"0e999999", true}, {"0e-400", true}, {"0e-401", false}, {"0.0e-99999", false},
		{"0e1073741822", true}, {"0e1073741823", false}, {"0e-1073741823", false},
		{"1e99999999999999999999999", false}, {"1e-99999999999999999999999", false},
		{"1.7976931348623157e308", true}, {"4.9406564584124654e-324", true}, {"-0", true}, {"0", true},
		{"1e200000", false}, {"-1e999999", false},
	}
	for _, tt := range tests {
		raw := `{"type":"identify","messageId":"m","userId":"u","traits":{"n":[1,` + tt.lit + `]}}`
		e, err := mapping.Decode([]byte(raw), "")
		switch {
		case tt.ok && err != nil:
			t.Errorf("%.40s: %v", tt.lit, err)
		case tt.ok && string(e.Traits["n"]) != "[1,"+tt.lit+"]":
			t.Errorf("%.40s: kept as %.60s", tt.lit, e.Traits["n"])
		case !tt.ok && (err == nil || !errors.Is(err, mapping.ErrInvalidEvent) || !strings.Contains(err.Error(), "traits.n holds the number")):
			t.Errorf("%.40s: error %v, want a dead letter naming traits.n", tt.lit, err)
		}
	}
}

// TestDecodeSizeLimits: traits, properties and context of at most
// MaxObjectBytes are accepted, larger ones are not.
func TestDecodeSizeLimits(t *testing.T) {
	t.Parallel()
	// value is a JSON string that makes its object about n bytes.
	value := func(n int) string { return `"` + strings.Repeat("x", n-len(`{"k":""}`)) + `"` }
	huge := "[" + strings.Repeat("0,", 100000) + "0]" // a huge array, 200 KB
	tests := []struct {
		name, raw, wantError string
	}{
		{"traits at the limit", `{"type":"identify","messageId":"m","userId":"u","traits":{"k":` + value(mapping.MaxObjectBytes) + `}}`, ""},
		{"traits past the limit", `{"type":"identify","messageId":"m","userId":"u","traits":{"k":` + value(mapping.MaxObjectBytes+2) + `}}`, "traits is larger than 32768 bytes"},
		{"many small traits past the limit", `{"type":"identify","messageId":"m","userId":"u","traits":{` + manyKeys(5000) + `}}`, "traits is larger than 32768 bytes"},
		{"properties past the limit", `{"type":"track","event":"e","messageId":"m","userId":"u","properties":{"k":` + huge + `}}`, "properties is larger than 32768 bytes"},
		{"context at the limit", `{"type":"page","messageId":"m","anonymousId":"a","context":{"k":` + value(mapping.MaxObjectBytes) + `}}`, ""},
		{"context past the limit", `{"type":"page","messageId":"m","anonymousId":"a","context":{"k":` + value(mapping.MaxObjectBytes+1) + `}}`, "context is larger than 32768 bytes"},
		{"a huge array in an ignored field", `{"type":"page","messageId":"m","anonymousId":"a","integrations":{"k":` + huge + `}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := mapping.Decode([]byte(tt.raw), "")
			switch {
			case tt.wantError == "" && err != nil:
				t.Fatalf("Decode: %v", err)
			case tt.wantError != "" && (err == nil || !errors.Is(err, mapping.ErrInvalidEvent) || !strings.Contains(err.Error(), tt.wantError)):
				t.Fatalf("error %v, want %q", err, tt.wantError)
			}
		})
	}
}

// manyKeys is n distinct object members "kN":1.
func manyKeys(n int) string {
	members := make([]string, n)
	for i := range members {
		members[i] = `"k` + strconv.Itoa(i) + `":1`
	}
	return strings.Join(members, ",")
}

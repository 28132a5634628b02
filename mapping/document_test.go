package mapping_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

// documentCase is one file in testdata/documents: settings, a stream of
// Segment events applied in the given order, and the document expected for
// one visitor.
type documentCase struct {
	Name string `json:"name"`
	// Description says what the case checks; informative only.
	Description string            `json:"description"`
	Settings    json.RawMessage   `json:"settings"`
	Events      []json.RawMessage `json:"events"`
	// Fallback is the time passed to Apply (the Kafka message time) for
	// events that carry no time of their own. Default: defaultFallback.
	Fallback    string `json:"fallback"`
	AnonymousID string `json:"anonymousId"`
	TTL         string `json:"ttl"`
	// IdentitySecret, when set, is the IDENTITY_SECRET events are admitted
	// under (their userHash proofs verify with it).
	IdentitySecret string `json:"identitySecret"`
	// Want is the expected document, or null when the visitor must have none.
	Want json.RawMessage `json:"want"`
}

const defaultFallback = "2030-01-01T00:00:00Z"

func TestBuildDocuments(t *testing.T) {
	t.Parallel()
	cases := loadCases[documentCase](t, "documents")
	for _, file := range sortedKeys(cases) {
		c := cases[file]
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			if c.Name == "" || len(c.Events) == 0 || c.AnonymousID == "" || len(c.Want) == 0 {
				t.Fatalf("case file is incomplete: name, events, anonymousId and want are required")
			}
			settings, err := mapping.ParseSettings(c.Settings)
			if err != nil {
				t.Fatalf("ParseSettings: %v", err)
			}
			ttl, err := time.ParseDuration(c.TTL)
			if err != nil {
				t.Fatalf("ttl %q: %v", c.TTL, err)
			}
			fb := c.Fallback
			if fb == "" {
				fb = defaultFallback
			}
			fallback, err := time.Parse(time.RFC3339Nano, fb)
			if err != nil {
				t.Fatalf("fallback %q: %v", fb, err)
			}

			// The cases date their events freely around the fallback, so
			// they are admitted under a window that never clamps them.
			policy := &mapping.Policy{Window: mapping.Window{Past: 1e6 * time.Hour, Future: 1e6 * time.Hour}}
			if c.IdentitySecret != "" {
				policy.Verifier = &mapping.Verifier{Secrets: [][]byte{[]byte(c.IdentitySecret)}}
			}
			st := mapping.NewState()
			for i, raw := range c.Events {
				e, err := mapping.Decode(raw, fmt.Sprintf("fallback-%d", i))
				if err != nil {
					t.Fatalf("event %d: Decode: %v\n%s", i, err, raw)
				}
				policy.Admit(&e, fallback)
				st.Apply(&e, fallback)
			}
			if dir := os.Getenv("PRECHAT_DUMP_DOCUMENTS"); dir != "" {
				if v, ok := st.Visitor(c.AnonymousID); ok {
					raw, _ := json.Marshal(settings.Build(v, ttl))
					_ = os.WriteFile(filepath.Join(dir, file), raw, 0o644)
				}
			}

			v, ok := st.Visitor(c.AnonymousID)
			if string(c.Want) == "null" {
				if ok {
					t.Fatalf("Visitor(%q) found a conversation, want none: %+v", c.AnonymousID, v)
				}
				return
			}
			if !ok {
				t.Fatalf("Visitor(%q): no conversation start", c.AnonymousID)
			}
			doc := settings.Build(v, ttl)
			assertJSONEqual(t, doc, c.Want)

			// Building is a pure function of the visitor: twice gives the
			// same bytes.
			a, _ := json.Marshal(doc)
			b, _ := json.Marshal(settings.Build(v, ttl))
			if string(a) != string(b) {
				t.Errorf("Build is not deterministic:\n%s\n%s", a, b)
			}
		})
	}
}

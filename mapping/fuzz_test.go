package mapping_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/examples"
	"github.com/prechat/prechat/mapping"
)

// FuzzDecode: no input panics; every rejection wraps ErrInvalidEvent with a
// reason; every accepted event satisfies what the pipeline relies on.
// Seeds: f.Add below and testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"identify","messageId":"m","anonymousId":"a","userId":7,"traits":{"email":"e@x","address":{"city":"Paris"}},"timestamp":"2026-11-30T05:00:00.123Z"}`,
		`{"type":"track","event":"Live Chat Conversation Started","anonymousId":"a","properties":{"subject":"x"},"sentAt":"2026-11-30T05:00:01Z","originalTimestamp":"2026-11-30T05:00:00Z","receivedAt":"2026-11-30T05:00:03Z"}`,
		`{"type":"group","groupId":"g","userId":"u","traits":{"revenue":1e400}}`,
		`{"type":"alias","userId":"u","previousId":"a"}`,
		`{"type":"page","anonymousId":"a","name":null,"context":{"ip":"1"}}`,
		`{"type":"identify","anonymousId":"a","traits":{"k":"\u0000"}}`,
		`{"type":"identify","anonymousId":"a","traits":[1]}`,
		`{"type":"identify"}}`,
		"\xff\xfe",
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := mapping.Decode(raw, "fallback")
		if err != nil {
			if !errors.Is(err, mapping.ErrInvalidEvent) || !strings.HasPrefix(err.Error(), "invalid event: ") || len(err.Error()) <= len("invalid event: ") {
				t.Fatalf("rejection without a clear reason: %v", err)
			}
			return
		}
		switch {
		case e.MessageID == "":
			t.Fatal("accepted without messageId")
		case e.AnonymousID == "" && e.UserID == "":
			t.Fatal("accepted without ids")
		case e.Type == mapping.TypeTrack && e.Event == "":
			t.Fatal("accepted a track without event")
		case e.IsConversationStart() && e.AnonymousID == "":
			t.Fatal("accepted a conversation start without anonymousId")
		}
		for _, o := range []mapping.Object{e.Traits, e.Properties} {
			for k, v := range o {
				if strings.ContainsRune(k, 0) || strings.Contains(string(v), `\u0000`) && !strings.Contains(string(v), `\\u0000`) {
					t.Fatalf("accepted a NUL Postgres cannot store: %q %s", k, v)
				}
			}
		}
		// Every accepted event folds into a state and builds a document.
		st := mapping.NewState()
		st.Apply(&e, time.Unix(0, 0))
		if e.IsConversationStart() {
			v, ok := st.Visitor(e.AnonymousID)
			if !ok {
				t.Fatal("conversation start without a visitor")
			}
			settings, _ := mapping.ParseSettings(examples.SettingsJSON)
			_ = settings.Build(v, time.Minute)
		}
	})
}

// FuzzParseSettings: no input panics; every rejection wraps
// ErrInvalidSettings; accepted settings validate and build documents.
func FuzzParseSettings(f *testing.F) {
	f.Add(examples.SettingsJSON)
	f.Add([]byte(`{"settings":{"hostname":"c.x","liveAgentEndpointUrl":"d.x","deploymentId":"5723D00000000F4","orgId":"00D3D000000DIdG","caseMappings":[{"property":"p","label":"L","fieldName":"F"}]}}`))
	f.Add([]byte(`{"hostname":"c.x","contactMappings":[{"key":1,"value":"x"}]}`))
	f.Add([]byte(`{"contactMappings":{"a":1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := mapping.ParseSettings(raw)
		if err != nil {
			if !errors.Is(err, mapping.ErrInvalidSettings) || err.Error() == "" {
				t.Fatalf("rejection without a clear reason: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted settings do not validate: %v", err)
		}
		v := mapping.Visitor{AnonymousID: "a", Conversation: mapping.Conversation{Properties: mapping.Object{"p": []byte(`"x"`)}}}
		doc := s.Build(v, time.Minute)
		if doc.Chat.ChatURL == "" || !strings.HasPrefix(doc.Chat.ScriptURL, "https://") {
			t.Fatalf("document without chat URLs: %+v", doc.Chat)
		}
	})
}

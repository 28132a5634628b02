package mapping_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
)

func tokenHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// TestConversationTokenFollowsTheLatestStart: the token hash belongs to the
// conversation start it came with, so a later start (a new conversation,
// a new secret) replaces it, and an older start delivered late does not
// bring its token back. It never reaches the document JSON.
func TestConversationTokenFollowsTheLatestStart(t *testing.T) {
	t.Parallel()
	start := func(id, at, secret string) mapping.Event {
		e, err := mapping.Decode([]byte(`{"type":"track","event":"Live Chat Conversation Started","messageId":"`+id+
			`","anonymousId":"a","timestamp":"`+at+`","context":{"prechat":{"tokenHash":"`+tokenHash(secret)+`"}}}`), "")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first, second := start("c1", "2024-05-01T10:00:00Z", "first"), start("c2", "2024-05-01T10:05:00Z", "second")
	for _, order := range [][]mapping.Event{{first, second}, {second, first}} {
		st := mapping.NewState()
		for _, e := range order {
			st.Apply(&e, time.Now())
		}
		v, ok := st.Visitor("a")
		if !ok || v.Conversation.TokenHash != tokenHash("second") || v.Conversation.MessageID != "c2" {
			t.Fatalf("applied %s then %s: conversation %+v, want c2 with the second secret's hash", order[0].MessageID, order[1].MessageID, v.Conversation)
		}
		raw, err := json.Marshal(mappingtest.Settings().Build(v, 30*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"first", "second"} {
			if strings.Contains(string(raw), tokenHash(secret)) {
				t.Fatalf("the document JSON holds a token hash: %s", raw)
			}
		}
	}
}

package mapping_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

func TestPartitionKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, want string }{
		{`{"type":"identify","messageId":"m","anonymousId":"a","userId":"u"}`, "a"},
		{`{"type":"identify","messageId":"m","userId":"u"}`, "u"},
		{`{"type":"page","messageId":"m","anonymousId":"a"}`, "a"},
		{`{"type":"alias","messageId":"m","previousId":"p","userId":"u"}`, "u"},
	}
	for _, tt := range tests {
		e, err := mapping.Decode([]byte(tt.raw), "")
		if err != nil {
			t.Fatal(err)
		}
		if got := e.PartitionKey(); got != tt.want {
			t.Errorf("PartitionKey of %s = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// TestBatch checks that a batch's state is the same as applying its events
// to a State, and that it records what it applied.
func TestBatch(t *testing.T) {
	t.Parallel()
	fallback := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	raws := []string{
		`{"type":"identify","messageId":"m-1","anonymousId":"a","userId":"u","traits":{"email":"e@x","lastName":"L"}}`,
		`{"type":"group","messageId":"m-2","anonymousId":"a","groupId":"g","traits":{"website":"w"}}`,
		`{"type":"track","event":"Live Chat Conversation Started","messageId":"m-3","anonymousId":"a","properties":{"subject":"s"}}`,
		`{"type":"page","messageId":"m-4","anonymousId":"a"}`,
	}
	b := mapping.NewBatch()
	if b.Len() != 0 || b.State == nil {
		t.Fatalf("NewBatch = %+v", b)
	}
	want := mapping.NewState()
	var wantApplied []mapping.Applied
	for _, raw := range raws {
		e, err := mapping.Decode([]byte(raw), "")
		if err != nil {
			t.Fatal(err)
		}
		b.Add(&e, fallback)
		want.Apply(&e, fallback)
		if e.CanChangeDocument() {
			wantApplied = append(wantApplied, mapping.Applied{MessageID: e.MessageID, Type: e.Type, AnonymousID: e.AnonymousID, UserID: e.UserID})
		}
	}
	if !reflect.DeepEqual(b.State, want) {
		t.Errorf("batch state differs from applying the events")
	}
	if len(wantApplied) == 0 || len(wantApplied) == len(raws) {
		t.Fatalf("the cases should mix events that can change a document and events that cannot")
	}
	if !reflect.DeepEqual(b.Applied, wantApplied) {
		t.Errorf("Applied = %+v, want %+v", b.Applied, wantApplied)
	}
	b.DeadLetters = append(b.DeadLetters, mapping.DeadLetter{Reason: "x"})
	if got := b.Len(); got != len(raws)+1 {
		t.Errorf("Len = %d, want %d", got, len(raws)+1)
	}

	settings, err := mapping.ParseSettings([]byte(`{"hostname":"c.la3-c1cs-phx","liveAgentEndpointUrl":"d.la3-c1cs-phx",
		"deploymentId":"5723D00000000F4","orgId":"00D3D000000DIdG",
		"contactMappings":[{"trait":"email","label":"User Email","fieldName":"Email"}],
		"caseMappings":[{"property":"subject","label":"Subject","fieldName":"CaseSubject"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	v, ok := b.State.Visitor("a")
	if !ok {
		t.Fatal("no visitor")
	}
	m := mapping.Materializer{Settings: settings, TTL: time.Hour}
	got, _ := json.Marshal(m.Document(v))
	direct, _ := json.Marshal(settings.Build(v, time.Hour))
	if string(got) != string(direct) {
		t.Errorf("Materializer.Document = %s, want %s", got, direct)
	}
	if d := m.Document(v); len(d.Details) != 2 || !d.ExpiresAt.Equal(d.CreatedAt.Add(time.Hour)) {
		t.Errorf("Materializer.Document details %+v expires %v", d.Details, d.ExpiresAt)
	}
}

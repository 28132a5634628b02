package mapping_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

// TestApplyEffects checks what each kind of event changes in a State.
func TestApplyEffects(t *testing.T) {
	t.Parallel()
	fallback := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	at := mapping.Stamp{At: fallback, MessageID: "m"}
	anon := mapping.Subject{Kind: mapping.KindAnonymous, ID: "a"}
	user := mapping.Subject{Kind: mapping.KindUser, ID: "u"}
	link := mapping.Link{AnonymousID: "a", UserID: "u"}
	tests := []struct {
		name  string
		raw   string
		check func(t *testing.T, st *mapping.State)
	}{
		{"identify with anonymousId only stores anonymous traits", `{"type":"identify","messageId":"m","anonymousId":"a","traits":{"k":1}}`,
			func(t *testing.T, st *mapping.State) {
				want := map[mapping.Subject]mapping.Traits{anon: {"k": {Value: []byte(`1`), Stamp: at}}}
				if !reflect.DeepEqual(st.Traits, want) || len(st.Links) != 0 {
					t.Errorf("traits %v links %v", st.Traits, st.Links)
				}
			}},
		{"identify with both ids stores user traits and links", `{"type":"identify","messageId":"m","anonymousId":"a","userId":"u","traits":{"k":1}}`,
			func(t *testing.T, st *mapping.State) {
				want := map[mapping.Subject]mapping.Traits{user: {"k": {Value: []byte(`1`), Stamp: at}}}
				if !reflect.DeepEqual(st.Traits, want) || !reflect.DeepEqual(st.Links, map[mapping.Link]mapping.Stamp{link: at}) {
					t.Errorf("traits %v links %v", st.Traits, st.Links)
				}
			}},
		{"identify without traits stores nothing", `{"type":"identify","messageId":"m","anonymousId":"a","traits":{}}`,
			func(t *testing.T, st *mapping.State) {
				if len(st.Traits) != 0 {
					t.Errorf("traits %v", st.Traits)
				}
			}},
		{"group stores group traits and the membership of the user", `{"type":"group","messageId":"m","anonymousId":"a","userId":"u","groupId":"g","traits":{"w":"x"}}`,
			func(t *testing.T, st *mapping.State) {
				g := mapping.Subject{Kind: mapping.KindGroup, ID: "g"}
				if !reflect.DeepEqual(st.Traits, map[mapping.Subject]mapping.Traits{g: {"w": {Value: []byte(`"x"`), Stamp: at}}}) {
					t.Errorf("traits %v", st.Traits)
				}
				if !reflect.DeepEqual(st.Memberships, map[mapping.Membership]mapping.Stamp{{Member: user, GroupID: "g"}: at}) {
					t.Errorf("memberships %v", st.Memberships)
				}
			}},
		{"group without traits records only the membership", `{"type":"group","messageId":"m","anonymousId":"a","groupId":"g"}`,
			func(t *testing.T, st *mapping.State) {
				if len(st.Traits) != 0 || !reflect.DeepEqual(st.Memberships, map[mapping.Membership]mapping.Stamp{{Member: anon, GroupID: "g"}: at}) {
					t.Errorf("traits %v memberships %v", st.Traits, st.Memberships)
				}
			}},
		{"alias links previousId and, when present, anonymousId", `{"type":"alias","messageId":"m","anonymousId":"b","previousId":"a","userId":"u"}`,
			func(t *testing.T, st *mapping.State) {
				want := map[mapping.Link]mapping.Stamp{link: at, {AnonymousID: "b", UserID: "u"}: at}
				if !reflect.DeepEqual(st.Links, want) {
					t.Errorf("links %v, want %v", st.Links, want)
				}
			}},
		{"conversation start is kept per anonymousId", `{"type":"track","event":"Live Chat Conversation Started","messageId":"m","anonymousId":"a","properties":{"s":"x"}}`,
			func(t *testing.T, st *mapping.State) {
				want := map[string]mapping.Conversation{"a": {Stamp: at, Properties: mapping.Object{"s": []byte(`"x"`)}}}
				if !reflect.DeepEqual(st.Conversations, want) {
					t.Errorf("conversations %v", st.Conversations)
				}
			}},
		{"other track with both ids only links", `{"type":"track","event":"Order Completed","messageId":"m","anonymousId":"a","userId":"u","properties":{"s":"x"}}`,
			func(t *testing.T, st *mapping.State) {
				if len(st.Traits)+len(st.Memberships)+len(st.Conversations) != 0 || !reflect.DeepEqual(st.Links, map[mapping.Link]mapping.Stamp{link: at}) {
					t.Errorf("state %+v", st)
				}
			}},
		{"page with anonymousId only changes nothing", `{"type":"page","messageId":"m","anonymousId":"a","properties":{"s":"x"}}`,
			func(t *testing.T, st *mapping.State) {
				if !reflect.DeepEqual(st, mapping.NewState()) {
					t.Errorf("state %+v", st)
				}
			}},
		{"screen with userId only changes nothing", `{"type":"screen","messageId":"m","userId":"u","name":"Home"}`,
			func(t *testing.T, st *mapping.State) {
				if !reflect.DeepEqual(st, mapping.NewState()) {
					t.Errorf("state %+v", st)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := mapping.Decode([]byte(tt.raw), "")
			if err != nil {
				t.Fatal(err)
			}
			st := mapping.NewState()
			st.Apply(&e, fallback)
			tt.check(t, st)
		})
	}
}

func TestVisitorWithoutConversation(t *testing.T) {
	t.Parallel()
	st := mapping.NewState()
	e, err := mapping.Decode([]byte(`{"type":"identify","messageId":"m","anonymousId":"a","traits":{"k":1}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	st.Apply(&e, time.Time{})
	if v, ok := st.Visitor("a"); ok || !reflect.DeepEqual(v, mapping.Visitor{}) {
		t.Errorf("Visitor without a conversation start = %+v, %v; want zero, false", v, ok)
	}
	if _, ok := mapping.NewState().Visitor(""); ok {
		t.Error("empty State has a visitor")
	}
}

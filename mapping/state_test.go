package mapping_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

// TestApplyEffects checks what each kind of event changes in a State, for
// unverified events (what anyone can send: only the sender's own visitor
// changes) and verified ones (Event.Verified: the user's and the group's
// shared profiles change too).
func TestApplyEffects(t *testing.T) {
	t.Parallel()
	fallback := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	at := mapping.Stamp{At: fallback, MessageID: "m"}
	anon := mapping.Subject{Kind: mapping.KindAnonymous, ID: "a"}
	user := mapping.Subject{Kind: mapping.KindUser, ID: "u"}
	group := mapping.Subject{Kind: mapping.KindGroup, ID: "g"}
	ownGroup := mapping.Subject{Kind: mapping.KindGroup, ID: "g", Observer: "a"}
	link := mapping.Link{AnonymousID: "a", UserID: "u"}
	k1 := mapping.Traits{"k": {Value: []byte(`1`), Stamp: at}}
	wx := mapping.Traits{"w": {Value: []byte(`"x"`), Stamp: at}}
	type want struct {
		traits        map[mapping.Subject]mapping.Traits
		links         map[mapping.Link]mapping.LinkState
		memberships   map[mapping.Membership]mapping.Stamp
		conversations map[string]mapping.Conversation
	}
	tests := []struct {
		name     string
		raw      string
		verified bool
		want     want
	}{
		{"identify with anonymousId only stores the visitor's traits", `{"type":"identify","messageId":"m","anonymousId":"a","traits":{"k":1}}`, false,
			want{traits: map[mapping.Subject]mapping.Traits{anon: k1}}},
		{"unverified identify with both ids stores the visitor's traits and an unverified link, never the user's", `{"type":"identify","messageId":"m","anonymousId":"a","userId":"u","traits":{"k":1}}`, false,
			want{traits: map[mapping.Subject]mapping.Traits{anon: k1}, links: map[mapping.Link]mapping.LinkState{link: {Stamp: at}}}},
		{"verified identify with both ids stores the user's traits (its, not the browser's) and a verified link", `{"type":"identify","messageId":"m","anonymousId":"a","userId":"u","traits":{"k":1}}`, true,
			want{traits: map[mapping.Subject]mapping.Traits{user: k1}, links: map[mapping.Link]mapping.LinkState{link: {Stamp: at, Verified: true}}}},
		{"unverified identify with userId only changes nothing", `{"type":"identify","messageId":"m","userId":"u","traits":{"k":1}}`, false, want{}},
		{"verified identify with userId only stores the user's traits", `{"type":"identify","messageId":"m","userId":"u","traits":{"k":1}}`, true,
			want{traits: map[mapping.Subject]mapping.Traits{user: k1}}},
		{"identify without traits stores nothing", `{"type":"identify","messageId":"m","anonymousId":"a","traits":{}}`, false, want{}},
		{"unverified group keeps the group traits for the sender's visitor only", `{"type":"group","messageId":"m","anonymousId":"a","userId":"u","groupId":"g","traits":{"w":"x"}}`, false,
			want{traits: map[mapping.Subject]mapping.Traits{ownGroup: wx}, links: map[mapping.Link]mapping.LinkState{link: {Stamp: at}},
				memberships: map[mapping.Membership]mapping.Stamp{{Member: anon, GroupID: "g"}: at}}},
		{"verified group writes the shared group traits and the user's membership only", `{"type":"group","messageId":"m","anonymousId":"a","userId":"u","groupId":"g","traits":{"w":"x"}}`, true,
			want{traits: map[mapping.Subject]mapping.Traits{group: wx}, links: map[mapping.Link]mapping.LinkState{link: {Stamp: at, Verified: true}},
				memberships: map[mapping.Membership]mapping.Stamp{{Member: user, GroupID: "g"}: at}}},
		{"unverified group with userId only changes nothing", `{"type":"group","messageId":"m","userId":"u","groupId":"g","traits":{"w":"x"}}`, false, want{}},
		{"group without traits records only the membership", `{"type":"group","messageId":"m","anonymousId":"a","groupId":"g"}`, false,
			want{memberships: map[mapping.Membership]mapping.Stamp{{Member: anon, GroupID: "g"}: at}}},
		{"verified alias links previousId and, when present, anonymousId", `{"type":"alias","messageId":"m","anonymousId":"b","previousId":"a","userId":"u"}`, true,
			want{links: map[mapping.Link]mapping.LinkState{link: {Stamp: at, Verified: true}, {AnonymousID: "b", UserID: "u"}: {Stamp: at, Verified: true}}}},
		{"unverified alias links only the sender's own visitor", `{"type":"alias","messageId":"m","anonymousId":"b","previousId":"a","userId":"u"}`, false,
			want{links: map[mapping.Link]mapping.LinkState{{AnonymousID: "b", UserID: "u"}: {Stamp: at}}}},
		{"unverified alias of the sender's own visitor links it", `{"type":"alias","messageId":"m","anonymousId":"a","previousId":"a","userId":"u"}`, false,
			want{links: map[mapping.Link]mapping.LinkState{link: {Stamp: at}}}},
		{"conversation start is kept per anonymousId", `{"type":"track","event":"Live Chat Conversation Started","messageId":"m","anonymousId":"a","properties":{"s":"x"}}`, false,
			want{conversations: map[string]mapping.Conversation{"a": {Stamp: at, Properties: mapping.Object{"s": []byte(`"x"`)}}}}},
		{"other track with both ids only links", `{"type":"track","event":"Order Completed","messageId":"m","anonymousId":"a","userId":"u","properties":{"s":"x"}}`, false,
			want{links: map[mapping.Link]mapping.LinkState{link: {Stamp: at}}}},
		{"page with anonymousId only changes nothing", `{"type":"page","messageId":"m","anonymousId":"a","properties":{"s":"x"}}`, false, want{}},
		{"screen with userId only changes nothing", `{"type":"screen","messageId":"m","userId":"u","name":"Home"}`, true, want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := mapping.Decode([]byte(tt.raw), "")
			if err != nil {
				t.Fatal(err)
			}
			e.Verified = tt.verified
			st := mapping.NewState()
			st.Apply(&e, fallback)
			w := mapping.NewState()
			for k, v := range tt.want.traits {
				w.Traits[k] = v
			}
			for k, v := range tt.want.links {
				w.Links[k] = v
			}
			for k, v := range tt.want.memberships {
				w.Memberships[k] = v
			}
			for k, v := range tt.want.conversations {
				w.Conversations[k] = v
			}
			if !reflect.DeepEqual(st, w) {
				t.Errorf("state\n got %+v\nwant %+v", st, w)
			}
		})
	}
}

// TestLinkVerifiedIsMonotone: a link stays verified whatever unverified
// events name the same pair later, earlier or again, and its stamp is the
// latest, so any order of the same events gives the same link.
func TestLinkVerifiedIsMonotone(t *testing.T) {
	t.Parallel()
	verified := `{"type":"identify","messageId":"m1","anonymousId":"a","userId":"u","timestamp":"2024-05-01T10:00:00Z"}`
	later := `{"type":"track","event":"x","messageId":"m2","anonymousId":"a","userId":"u","timestamp":"2024-05-01T11:00:00Z"}`
	want := mapping.LinkState{Stamp: mapping.Stamp{At: time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC), MessageID: "m2"}, Verified: true}
	for _, order := range [][]string{{verified, later}, {later, verified}, {later, verified, later, verified}} {
		st := mapping.NewState()
		for _, raw := range order {
			e, err := mapping.Decode([]byte(raw), "")
			if err != nil {
				t.Fatal(err)
			}
			e.Verified = e.MessageID == "m1"
			st.Apply(&e, time.Time{})
		}
		if got := st.Links[mapping.Link{AnonymousID: "a", UserID: "u"}]; got != want {
			t.Errorf("order %d events: link %+v, want %+v", len(order), got, want)
		}
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

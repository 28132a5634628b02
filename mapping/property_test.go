package mapping_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

// genEvent is a generated Segment event with the Kafka-side context Decode
// and Apply need; a redelivered duplicate shares all three.
type genEvent struct {
	raw        []byte
	fallbackID string
	fallback   time.Time
	// event and stamp are raw decoded, for sorting and the model.
	event mapping.Event
	stamp mapping.Stamp
}

// genSecret is the IDENTITY_SECRET of the generated streams.
var genSecret = []byte("property-test-identity-secret-0123456789")

// genPolicy admits the generated events: the default window (their times
// lie within it) and genSecret.
var genPolicy = &mapping.Policy{Verifier: &mapping.Verifier{Secrets: [][]byte{genSecret}}}

var (
	genAnons  = []string{"anon-1", "anon-2", "anon-3"}
	genUsers  = []string{"user-1", "user-2"}
	genGroups = []string{"group-1", "group-2"}
	genValues = []any{"v1", "v2", "", 0, 7, 2.5, true, nil, map[string]any{"city": "Paris"}, map[string]any{"city": "Lyon", "zip": "69001"}}
)

// generate makes a random stream over a few visitors, users and groups,
// with coarse times so that ties (broken by messageId) are common.
func generate(r *rand.Rand) []genEvent {
	base := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	values := func(keys ...string) map[string]any {
		out := map[string]any{}
		for _, k := range keys {
			if r.IntN(2) == 0 {
				out[k] = genValues[r.IntN(len(genValues))]
			}
		}
		return out
	}
	n := 10 + r.IntN(50)
	events := make([]genEvent, 0, n)
	for i := range n {
		e := map[string]any{}
		g := genEvent{fallbackID: fmt.Sprintf("fb-%03d", i)}
		if r.IntN(10) != 0 {
			e["messageId"] = fmt.Sprintf("m-%03d", r.IntN(1000))
		}
		at := base.Add(time.Duration(r.IntN(4))*time.Second + time.Duration(r.IntN(2))*time.Millisecond)
		g.fallback = base.Add(time.Hour) // overridden when the event carries no time
		switch r.IntN(4) {
		case 0:
			e["timestamp"] = at.Format(time.RFC3339Nano)
		case 1: // client clock 1h ahead, 3s in flight: the corrected time is at
			e["originalTimestamp"] = at.Add(time.Hour).Format(time.RFC3339Nano)
			e["sentAt"] = at.Add(time.Hour + 2*time.Second).Format(time.RFC3339Nano)
			e["receivedAt"] = at.Add(2 * time.Second).Format(time.RFC3339Nano)
		case 2:
			e["receivedAt"] = at.Format(time.RFC3339Nano)
		case 3:
			g.fallback = at
		}
		anon, user := pick(genAnons), pick(genUsers)
		switch ids := r.IntN(3); {
		case ids == 0:
			e["anonymousId"] = anon
		case ids == 1:
			e["userId"] = user
		default:
			e["anonymousId"], e["userId"] = anon, user
		}
		// Proofs: valid, forged (another user's hash), or none.
		proof := func(user string) {
			switch r.IntN(3) {
			case 0:
				e["context"] = map[string]any{"prechat": map[string]any{"userHash": mapping.UserHash(genSecret, user)}}
			case 1:
				e["context"] = map[string]any{"prechat": map[string]any{"userHash": mapping.UserHash(genSecret, user+"-other")}}
			}
		}
		switch k := r.IntN(20); {
		case k < 7:
			e["type"] = "identify"
			e["traits"] = values("email", "firstName", "lastName", "plan", "address")
		case k < 11:
			e["type"] = "group"
			e["groupId"] = pick(genGroups)
			e["traits"] = values("website", "revenue", "name")
		case k < 13:
			e["type"] = "alias"
			e["previousId"], e["userId"] = anon, user
			if r.IntN(2) == 0 {
				e["anonymousId"] = pick(genAnons)
			}
		case k < 17:
			e["type"] = "track"
			e["event"] = mapping.ConversationStarted
			e["anonymousId"] = anon
			e["properties"] = values("caseStatus", "subject", "order")
		case k < 18:
			e["type"] = "track"
			e["event"] = "Order Completed"
			e["properties"] = values("caseStatus", "subject")
		default:
			e["type"] = []string{"page", "screen"}[r.IntN(2)]
			e["name"] = "Home"
		}
		if u, ok := e["userId"].(string); ok {
			proof(u)
		}
		raw, err := json.Marshal(e)
		if err != nil {
			panic(err)
		}
		g.raw = raw
		events = append(events, g)
	}
	return dedupe(events)
}

// dedupe keeps one event per messageId, so that events sharing a messageId
// are true duplicates, as Segment's rule assumes.
func dedupe(events []genEvent) []genEvent {
	seen := map[string]bool{}
	out := events[:0]
	for _, g := range events {
		e, err := mapping.Decode(g.raw, g.fallbackID)
		if err != nil {
			panic(fmt.Sprintf("generated an invalid event %s: %v", g.raw, err))
		}
		if !seen[e.MessageID] {
			seen[e.MessageID] = true
			genPolicy.Admit(&e, g.fallback)
			g.event, g.stamp = e, e.Stamp(g.fallback)
			out = append(out, g)
		}
	}
	return out
}

func applyAll(t *testing.T, events []genEvent) *mapping.State {
	t.Helper()
	st := mapping.NewState()
	for _, g := range events {
		e, err := mapping.Decode(g.raw, g.fallbackID)
		if err != nil {
			t.Fatalf("Decode %s: %v", g.raw, err)
		}
		genPolicy.Admit(&e, g.fallback)
		st.Apply(&e, g.fallback)
	}
	return st
}

// model is an independent reading of the rules: for every trait key,
// link, membership and visitor's conversation, the event with the greatest
// (time, messageId) wins.
func model(t *testing.T, events []genEvent) *mapping.State {
	t.Helper()
	type write struct {
		st mapping.Stamp
		fn func()
	}
	wins := map[string]write{}
	put := func(key string, st mapping.Stamp, fn func()) {
		if w, ok := wins[key]; !ok || st.At.After(w.st.At) || (st.At.Equal(w.st.At) && st.MessageID > w.st.MessageID) {
			wins[key] = write{st, fn}
		}
	}
	want := mapping.NewState()
	verifiedLinks := map[mapping.Link]bool{}
	for _, g := range events {
		e := g.event
		st := mapping.Stamp{At: e.Time(g.fallback), MessageID: e.MessageID}
		// Verified: the userHash is the HMAC of this very userId.
		var ctx struct {
			Prechat struct{ UserHash string }
		}
		_ = json.Unmarshal(e.Context, &ctx)
		verified := e.UserID != "" && ctx.Prechat.UserHash == mapping.UserHash(genSecret, e.UserID)
		link := func(l mapping.Link) {
			put(fmt.Sprintf("link %q", l), st, func() { want.Links[l] = mapping.LinkState{Stamp: st, Verified: verifiedLinks[l]} })
			verifiedLinks[l] = verifiedLinks[l] || verified
		}
		setTraits := func(sub mapping.Subject, o mapping.Object) {
			for k, v := range o {
				put(fmt.Sprintf("trait %q %q", sub, k), st, func() {
					if want.Traits[sub] == nil {
						want.Traits[sub] = mapping.Traits{}
					}
					want.Traits[sub][k] = mapping.Trait{Value: v, Stamp: st}
				})
			}
		}
		member := func(m mapping.Membership) {
			put(fmt.Sprintf("member %q", m), st, func() { want.Memberships[m] = st })
		}
		anon := mapping.Subject{Kind: mapping.KindAnonymous, ID: e.AnonymousID}
		user := mapping.Subject{Kind: mapping.KindUser, ID: e.UserID}
		if e.AnonymousID != "" && e.UserID != "" {
			link(mapping.Link{AnonymousID: e.AnonymousID, UserID: e.UserID})
		}
		switch {
		// A verified event speaks for its user; an unverified one for its
		// sender's visitor only.
		case e.Type == mapping.TypeIdentify && verified:
			setTraits(user, e.Traits)
		case e.Type == mapping.TypeIdentify && e.AnonymousID != "":
			setTraits(anon, e.Traits)
		case e.Type == mapping.TypeGroup && verified:
			setTraits(mapping.Subject{Kind: mapping.KindGroup, ID: e.GroupID}, e.Traits)
			member(mapping.Membership{Member: user, GroupID: e.GroupID})
		case e.Type == mapping.TypeGroup && e.AnonymousID != "":
			setTraits(mapping.Subject{Kind: mapping.KindGroup, ID: e.GroupID, Observer: e.AnonymousID}, e.Traits)
			member(mapping.Membership{Member: anon, GroupID: e.GroupID})
		case e.Type == mapping.TypeAlias:
			if verified || e.PreviousID == e.AnonymousID {
				link(mapping.Link{AnonymousID: e.PreviousID, UserID: e.UserID})
			}
		case e.IsConversationStart():
			c := mapping.Conversation{Stamp: st, Properties: e.Properties}
			put("conversation "+e.AnonymousID, st, func() { want.Conversations[e.AnonymousID] = c })
		}
	}
	for _, w := range wins {
		w.fn()
	}
	for l, ls := range want.Links {
		ls.Verified = verifiedLinks[l]
		want.Links[l] = ls
	}
	return want
}

var propertySettings = []byte(`{
	"hostname": "c.la3-c1cs-phx", "liveAgentEndpointUrl": "d.la3-c1cs-phx",
	"deploymentId": "5723D00000000F4", "orgId": "00D3D000000DIdG", "enableLogging": true,
	"contactMappings": [
		{"key": "email", "value": {"trait": "email", "label": "User Email", "fieldName": "Email", "doFind": true, "isExactMatch": true, "doCreate": true}},
		{"trait": "lastName", "label": "Last Name", "fieldName": "LastName"},
		{"trait": "address.city", "label": "City", "fieldName": "MailingCity"}
	],
	"caseMappings": [
		{"key": "caseStatus", "value": {"property": "caseStatus", "label": "Case Status", "fieldName": "Status"}},
		{"property": "subject", "label": "Subject", "fieldName": "CaseSubject"}
	],
	"accountMappings": [
		{"key": "website", "value": {"property": "website", "label": "Account Website", "fieldName": "Website"}},
		{"property": "revenue", "label": "Account Revenue", "fieldName": "AnnualRevenue"}
	]
}`)

// TestApplyOrderIndependent: for many seeds, the same events applied in
// time order, in input order, reversed, and shuffled with redeliveries give
// equal States, equal to the model, and byte-identical documents.
func TestApplyOrderIndependent(t *testing.T) {
	t.Parallel()
	settings, err := mapping.ParseSettings(propertySettings)
	if err != nil {
		t.Fatal(err)
	}
	var docs, details, names, conflicts int
	for seed := range uint64(400) {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		events := generate(r)

		sorted := slices.Clone(events)
		slices.SortStableFunc(sorted, func(a, b genEvent) int {
			sa, sb := a.stamp, b.stamp
			switch {
			case sa.After(sb):
				return 1
			case sb.After(sa):
				return -1
			}
			return 0
		})
		reversed := slices.Clone(sorted)
		slices.Reverse(reversed)
		shuffled := slices.Clone(events)
		for range 1 + r.IntN(len(events)) {
			shuffled = append(shuffled, events[r.IntN(len(events))])
		}
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

		want := applyAll(t, sorted)
		if m := model(t, events); !reflect.DeepEqual(want, m) {
			t.Fatalf("seed %d: state differs from the model\nstate: %s\nmodel: %s\nevents:\n%s", seed, dumpState(want), dumpState(m), dumpEvents(sorted))
		}
		for name, order := range map[string][]genEvent{"input": events, "reversed": reversed, "shuffled with duplicates": shuffled} {
			got := applyAll(t, order)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d: %s order gives another state\n got: %s\nwant: %s\nevents:\n%s", seed, name, dumpState(got), dumpState(want), dumpEvents(order))
			}
			for _, anon := range genAnons {
				vw, okw := want.Visitor(anon)
				vg, okg := got.Visitor(anon)
				if okw != okg {
					t.Fatalf("seed %d: %s order: Visitor(%s) ok = %v, want %v", seed, name, anon, okg, okw)
				}
				if !okw {
					continue
				}
				dw, _ := json.Marshal(settings.Build(vw, 30*time.Minute))
				dg, _ := json.Marshal(settings.Build(vg, 30*time.Minute))
				if string(dw) != string(dg) {
					t.Fatalf("seed %d: %s order: documents for %s differ\n got: %s\nwant: %s", seed, name, anon, dg, dw)
				}
			}
		}

		for _, anon := range genAnons {
			if v, ok := want.Visitor(anon); ok {
				d := settings.Build(v, 30*time.Minute)
				docs++
				details += len(d.Details)
				if d.VisitorName != "" {
					names++
				}
				checkDocumentInvariants(t, seed, d, v)
			}
		}
		conflicts += overwritten(events, want)
	}
	t.Logf("%d documents, %d details, %d visitor names, %d overwritten trait writes", docs, details, names, conflicts)
	// The property must not hold vacuously.
	if docs < 100 || details < 100 || names == 0 || conflicts < 100 {
		t.Errorf("generator too weak: %d documents, %d details, %d visitor names, %d overwritten writes", docs, details, names, conflicts)
	}
}

// overwritten counts trait writes that lost to another write of the same
// key, to measure how often writes competed.
func overwritten(events []genEvent, st *mapping.State) int {
	n := 0
	for _, g := range events {
		if g.event.Type == mapping.TypeIdentify || g.event.Type == mapping.TypeGroup {
			n += len(g.event.Traits)
		}
	}
	for _, tr := range st.Traits {
		n -= len(tr)
	}
	return n
}

// checkDocumentInvariants checks what must hold for any document.
func checkDocumentInvariants(t *testing.T, seed uint64, d mapping.Document, v mapping.Visitor) {
	t.Helper()
	if !slices.IsSorted(d.Applied) || !slices.Contains(d.Applied, d.ConversationMessageID) {
		t.Fatalf("seed %d: applied %v is unsorted or lacks the conversation %s", seed, d.Applied, d.ConversationMessageID)
	}
	if !d.CreatedAt.Equal(v.Conversation.At) || !d.ExpiresAt.Equal(d.CreatedAt.Add(30*time.Minute)) || d.UpdatedAt.Before(d.CreatedAt) {
		t.Fatalf("seed %d: times created %v updated %v expires %v", seed, d.CreatedAt, d.UpdatedAt, d.ExpiresAt)
	}
	order := map[mapping.Entity]int{mapping.EntityContact: 0, mapping.EntityCase: 1, mapping.EntityAccount: 2}
	for i, det := range d.Details {
		if i > 0 && order[det.Entity] < order[d.Details[i-1].Entity] {
			t.Fatalf("seed %d: details out of Contact, Case, Account order: %+v", seed, d.Details)
		}
		if string(det.Value) == "null" || len(det.Value) == 0 {
			t.Fatalf("seed %d: detail %q has no value", seed, det.Label)
		}
	}
}

func dumpState(st *mapping.State) string {
	var b strings.Builder
	for sub, tr := range st.Traits {
		for k, v := range tr {
			fmt.Fprintf(&b, "\n  %s/%s/%s %s=%s @%s %s", sub.Kind, sub.ID, sub.Observer, k, v.Value, v.At.Format(time.RFC3339Nano), v.MessageID)
		}
	}
	for l, s := range st.Links {
		fmt.Fprintf(&b, "\n  link %s→%s @%s %s verified=%v", l.AnonymousID, l.UserID, s.At.Format(time.RFC3339Nano), s.MessageID, s.Verified)
	}
	for m, s := range st.Memberships {
		fmt.Fprintf(&b, "\n  member %s/%s∈%s @%s %s", m.Member.Kind, m.Member.ID, m.GroupID, s.At.Format(time.RFC3339Nano), s.MessageID)
	}
	for a, c := range st.Conversations {
		props, _ := json.Marshal(c.Properties)
		fmt.Fprintf(&b, "\n  conversation %s %s @%s %s", a, props, c.At.Format(time.RFC3339Nano), c.MessageID)
	}
	return b.String()
}

func dumpEvents(events []genEvent) string {
	var b strings.Builder
	for _, g := range events {
		fmt.Fprintf(&b, "  %s (fallback %s, id %s)\n", g.raw, g.fallback.Format(time.RFC3339Nano), g.fallbackID)
	}
	return b.String()
}

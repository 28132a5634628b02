// Package mappingtest provides the example destination settings and a
// seeded generator of Segment event streams, shared by the tests and
// benchmarks of every package so they exercise the same workload.
package mappingtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prechat/prechat/examples"
	"github.com/prechat/prechat/mapping"
)

// SettingsJSON is the example settings file, examples/settings.json: the
// mappings of Segment's own integration tests, with first and last name
// added.
var SettingsJSON = examples.SettingsJSON

// Settings parses SettingsJSON.
func Settings() *mapping.Settings {
	s, err := mapping.ParseSettings(SettingsJSON)
	if err != nil {
		panic(err)
	}
	return s
}

// IdentitySecret is the IDENTITY_SECRET that the tests' verified events are
// signed with (Proof, the Generator) and admitted under (Policy).
const IdentitySecret = "mappingtest-identity-secret-0123456789abcdef"

// Policy admits test events as the service does by default (the default
// time window), with IdentitySecret as the only identity secret and the
// key of IdentityToken as the only token key.
func Policy() *mapping.Policy {
	return &mapping.Policy{Verifier: &mapping.Verifier{
		Secrets: [][]byte{[]byte(IdentitySecret)},
		Keys:    []mapping.JWTKey{{ID: JWTKeyID, Key: &jwtKey.PublicKey}},
	}}
}

// Proof is the context of an event that the site's server vouched for
// userID: {"prechat":{"userHash": HMAC of userID under IdentitySecret}}.
func Proof(userID string) string {
	return `{"prechat":{"userHash":"` + mapping.UserHash([]byte(IdentitySecret), userID) + `"}}`
}

// Generator produces a reproducible stream of Segment events over a pool
// of visitors, users and groups: identifies (anonymous and logged in),
// groups, aliases, conversation starts and ignored page/track events, with
// event times spread over Spread before Base.
type Generator struct {
	Rand *rand.Rand
	// Visitors, Users and Groups size the id pools; 0 means a new id for
	// every event that needs one ("every event a new visitor").
	Visitors, Users, Groups int
	// Base is the latest event time. Default: the time of the first event.
	Base time.Time
	// Spread is how far event times reach back. Default: 5m.
	Spread time.Duration
	// Prefix makes ids unique across generators sharing a database.
	Prefix string
	// Unverified makes every event carry no identity proof; otherwise three
	// events in four that carry a userId prove it (Proof).
	Unverified bool
	// Skew sends device times as a browser library would: no timestamp, but
	// originalTimestamp and sentAt from a device clock off by up to an hour,
	// and receivedAt from the server; the event time is then derived with
	// Segment's correction.
	Skew bool

	seq int
}

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed uint64, visitors, users, groups int) *Generator {
	return &Generator{Rand: rand.New(rand.NewPCG(seed, seed^0x5eed)), Visitors: visitors, Users: users, Groups: groups}
}

// Event returns the next event as JSON.
func (g *Generator) Event() []byte {
	g.seq++
	// Each visitor belongs to one user and each user to one group, as on a
	// real site; a few events cross over (shared devices, account switches).
	v := g.index(g.Visitors)
	anon := g.name("anon", v)
	user := g.name("user", g.derive(v, g.Users))
	groupOf := g.name("group", g.derive(g.derive(v, g.Users), g.Groups))
	e := map[string]any{
		"messageId":   fmt.Sprintf("%smsg-%d-%d", g.Prefix, g.seq, g.Rand.Uint32()),
		"anonymousId": anon,
		"context":     map[string]any{"library": map[string]any{"name": "mappingtest", "version": "1"}},
	}
	at := g.time()
	if g.Skew {
		device := time.Duration(g.Rand.Int64N(int64(2*time.Hour))) - time.Hour
		queued := time.Duration(g.Rand.Int64N(int64(10 * time.Second)))
		transit := time.Duration(g.Rand.Int64N(int64(time.Second)))
		// Microsecond steps keep the correction exact at Postgres's precision.
		device, queued, transit = device.Truncate(time.Microsecond), queued.Truncate(time.Microsecond), transit.Truncate(time.Microsecond)
		at = at.Truncate(time.Microsecond)
		e["originalTimestamp"] = at.Add(device).Format(time.RFC3339Nano)
		e["sentAt"] = at.Add(device + queued).Format(time.RFC3339Nano)
		e["receivedAt"] = at.Add(queued + transit).Format(time.RFC3339Nano)
	} else {
		e["timestamp"] = at.Format(time.RFC3339Nano)
	}
	switch r := g.Rand.IntN(100); {
	case r < 30:
		e["type"] = "identify"
		if g.Rand.IntN(3) > 0 {
			e["userId"] = user
		}
		e["traits"] = map[string]any{
			"email":     fmt.Sprintf("%s@example.com", user),
			"firstName": []string{"Ada", "Grace", "Linus", "Barbara"}[g.Rand.IntN(4)],
			"lastName":  []string{"Lovelace", "Hopper", "Torvalds", "Liskov"}[g.Rand.IntN(4)],
			"plan":      []string{"free", "pro", "enterprise"}[g.Rand.IntN(3)],
			"logins":    g.Rand.IntN(1000),
		}
	case r < 50:
		e["type"] = "group"
		if g.Rand.IntN(2) == 0 {
			e["userId"] = user
		}
		group := groupOf
		e["groupId"] = group
		e["traits"] = map[string]any{"website": group + ".example.com", "revenue": g.Rand.IntN(1_000_000), "industry": "software"}
	case r < 70:
		e["type"] = "track"
		e["event"] = mapping.ConversationStarted
		e["properties"] = map[string]any{"caseStatus": []string{"New", "Pending", "Escalated"}[g.Rand.IntN(3)], "subject": fmt.Sprintf("Question %d", g.Rand.IntN(100))}
	case r < 75:
		e["type"] = "alias"
		e["userId"] = user
		e["previousId"] = anon
	case r < 90:
		e["type"] = "page"
		e["name"] = "Pricing"
		e["properties"] = map[string]any{"path": "/pricing"}
	default:
		e["type"] = "track"
		e["event"] = "Product Viewed"
		e["properties"] = map[string]any{"sku": fmt.Sprintf("sku-%d", g.Rand.IntN(50))}
	}
	if u, ok := e["userId"].(string); ok && !g.Unverified && g.Rand.IntN(4) > 0 {
		e["context"].(map[string]any)["prechat"] = map[string]any{"userHash": mapping.UserHash([]byte(IdentitySecret), u)}
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return b
}

// Events returns the next n events.
func (g *Generator) Events(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Event()
	}
	return out
}

// Poison returns an invalid message of a random kind.
func (g *Generator) Poison() []byte {
	g.seq++
	switch g.Rand.IntN(4) {
	case 0:
		return []byte(`{"type":"identify","traits":`)
	case 1:
		return []byte(fmt.Sprintf(`{"type":"identify","messageId":"%spoison-%d","traits":{"a":1}}`, g.Prefix, g.seq))
	case 2:
		return []byte(fmt.Sprintf(`{"type":"track","messageId":"%spoison-%d","anonymousId":"x"}`, g.Prefix, g.seq))
	default:
		return []byte(fmt.Sprintf(`{"type":"identify","messageId":"%spoison-%d","anonymousId":"x","traits":["not","an","object"]}`, g.Prefix, g.seq))
	}
}

// index picks a member of a pool of n, or a new one (-1) when n is 0.
func (g *Generator) index(n int) int {
	if n <= 0 {
		return -1
	}
	return g.Rand.IntN(n)
}

// derive maps a member of one pool onto a member of a pool of n: mostly a
// fixed mapping, 1 time in 50 a random one.
func (g *Generator) derive(i, n int) int {
	switch {
	case n <= 0 || i < 0:
		return -1
	case g.Rand.IntN(50) == 0:
		return g.Rand.IntN(n)
	}
	return i % n
}

func (g *Generator) name(kind string, i int) string {
	if i < 0 {
		return fmt.Sprintf("%s%s-%d", g.Prefix, kind, g.seq)
	}
	return fmt.Sprintf("%s%s-%d", g.Prefix, kind, i)
}

func (g *Generator) time() time.Time {
	if g.Base.IsZero() {
		g.Base = time.Now()
	}
	base, spread := g.Base, g.Spread
	if spread == 0 {
		spread = 5 * time.Minute
	}
	return base.Add(-time.Duration(g.Rand.Int64N(int64(spread)))).UTC()
}

// OriginalLiveAgentCalls is, as a JSON array of [name, args...], what
// Segment's browser integration called on liveagent for the example visitor
// under the example settings — identify traits email ada@example.com,
// firstName Ada, lastName Lovelace; group traits website acme.test, revenue
// 100; conversation start properties caseStatus New and the given subject —
// the sequence the snippet must reproduce exactly, init last.
func OriginalLiveAgentCalls(subject string) string {
	s, _ := json.Marshal(subject)
	return `[
	["findOrCreate", "Contact"],
	["addCustomDetail", "User Email", "ada@example.com", true],
	["map", "Email", "User Email", true, true, true],
	["addCustomDetail", "First Name", "Ada", true],
	["map", "FirstName", "First Name", false, false, true],
	["addCustomDetail", "Last Name", "Lovelace", true],
	["map", "LastName", "Last Name", false, true, true],
	["setName", "Ada Lovelace"],
	["findOrCreate", "Case"],
	["addCustomDetail", "Case Status", "New", true],
	["map", "Status", "Case Status", false, false, false],
	["addCustomDetail", "Subject", ` + string(s) + `, true],
	["map", "Subject", "Subject", false, false, true],
	["findOrCreate", "Account"],
	["addCustomDetail", "Account Website", "acme.test", true],
	["map", "Website", "Account Website", true, true, false],
	["addCustomDetail", "Account Revenue", 100, true],
	["map", "AnnualRevenue", "Account Revenue", false, false, false],
	["init", "https://d.la3-c1cs-phx.salesforceliveagent.com/chat", "5723D00000000F4", "00D3D000000DIdG"]
]`
}

package api_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/prechat/prechat/browsertest"
	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
)

// The liveagent calls of verified.html's conversation start for grace, a
// user the site's server identified as grace@example.com, Grace Hopper,
// and put in the company navy (navy.test, revenue 42); the page itself
// only says lastName Hopper.
const (
	// graceVerifiedCalls: with the userHash, the server's facts reach the
	// page: the email and first name it never sent, the name, her company.
	graceVerifiedCalls = `[
		["findOrCreate", "Contact"],
		["addCustomDetail", "User Email", "grace@example.com", true],
		["map", "Email", "User Email", true, true, true],
		["addCustomDetail", "First Name", "Grace", true],
		["map", "FirstName", "First Name", false, false, true],
		["addCustomDetail", "Last Name", "Hopper", true],
		["map", "LastName", "Last Name", false, true, true],
		["setName", "Grace Hopper"],
		["findOrCreate", "Case"],
		["addCustomDetail", "Case Status", "New", true],
		["map", "Status", "Case Status", false, false, false],
		["addCustomDetail", "Subject", "COBOL", true],
		["map", "Subject", "Subject", false, false, true],
		["findOrCreate", "Account"],
		["addCustomDetail", "Account Website", "navy.test", true],
		["map", "Website", "Account Website", true, true, false],
		["addCustomDetail", "Account Revenue", 42, true],
		["map", "AnnualRevenue", "Account Revenue", false, false, false],
		["init", "https://d.la3-c1cs-phx.salesforceliveagent.com/chat", "5723D00000000F4", "00D3D000000DIdG"]
	]`
	// graceClaimedCalls: without a valid userHash, only what the page sent
	// itself: its lastName, no name (no firstName), no company.
	graceClaimedCalls = `[
		["findOrCreate", "Contact"],
		["addCustomDetail", "Last Name", "Hopper", true],
		["map", "LastName", "Last Name", false, true, true],
		["findOrCreate", "Case"],
		["addCustomDetail", "Case Status", "New", true],
		["map", "Status", "Case Status", false, false, false],
		["addCustomDetail", "Subject", "COBOL", true],
		["map", "Subject", "Subject", false, false, true],
		["init", "https://d.la3-c1cs-phx.salesforceliveagent.com/chat", "5723D00000000F4", "00D3D000000DIdG"]
	]`
)

// TestBrowserVerifiedUser is the cross-device path in Chromium with the
// real analytics-next. The site's server, with analytics-go and a server
// write key, identifies grace with her email and names and puts her in the
// company navy. Then a page of hers identifies the same userId and starts a
// conversation: with the userHash her site's server renders into the page
// (computed here as that server would), the snippet applies what only the
// server sent; the same page without a userHash, or with the valid
// userHash of another user (an attacker's own, replayed for grace), claims
// grace in vain and gets only what it sent itself.
func TestBrowserVerifiedUser(t *testing.T) {
	t.Parallel()
	requireBrowserDeps(t)
	s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: browserRoutes()})
	now := time.Now()
	serverIdentifiesGrace(t, s, now)
	// The pages' events must find the server's applied.
	waitApplied(t, s, "srv-identify", "srv-group")

	secret := []byte(mappingtest.IdentitySecret)
	for _, c := range []struct {
		name, userHash, calls string
		verified              bool
	}{
		{"with the userHash", mapping.UserHash(secret, "grace"), graceVerifiedCalls, true},
		{"without a userHash", "", graceClaimedCalls, false},
		{"with another user's userHash", mapping.UserHash(secret, "mallory"), graceClaimedCalls, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t)
			q := url.Values{"userId": {"grace"}}
			if c.userHash != "" {
				q.Set("userHash", c.userHash)
			}
			b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/verified.html?"+q.Encode()))
			b.Poll(10*time.Second, `window.__ready === true`)
			b.Do(10*time.Second, chromedp.Click(chromedp.ID("start")))
			b.Poll(30*time.Second, `(window.__liveagentCalls || []).some(function (c) { return c[0] === 'init'; })`)
			browsertest.AssertJSON(t, "liveagent calls", b.Eval(`window.__liveagentCalls`), c.calls)

			doc := browsertest.Eval[map[string]any](b, `window.__prechatApplied[0]`)
			if got, _ := doc["userVerified"].(bool); got != c.verified || doc["userId"] != "grace" {
				t.Errorf("the document's userId %v, userVerified %v; want grace, verified %t", doc["userId"], doc["userVerified"], c.verified)
			}
			// Each Contact and Account detail says where it came from: all
			// from the verified user, or all from this browser.
			for _, d := range doc["details"].([]any) {
				d := d.(map[string]any)
				if verified, _ := d["verified"].(bool); d["entity"] != "Case" && verified != c.verified {
					t.Errorf("detail %v: verified %t, want %t", d, verified, c.verified)
				}
			}
			browsertest.AssertJSON(t, "onError calls", b.Eval(`window.__prechatErrors`), `[]`)
			if browsertest.CountPosts(b.Requests(), s.url+"/v1/i") == 0 {
				t.Errorf("analytics-next did not POST /v1/i; requests: %v", b.Requests())
			}
			b.AssertLocal(s.url)
			b.AssertNoExceptions()
		})
	}
}

// waitApplied waits until the consumer applied the messageIds.
func waitApplied(t *testing.T, s *stack, messageIDs ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing, err := s.store.AppliedMissing(context.Background(), messageIDs)
		if err != nil {
			t.Fatal(err)
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v not applied after 30s", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

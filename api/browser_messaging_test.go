package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/prechat/prechat/browsertest"
	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
)

// The Messaging for Web lifecycle in Chromium, on the stand-in bootstrap.js,
// which reproduces the event order Salesforce documents: a conversation
// outlives the page (onEmbeddedMessagingConversationStarted only in the tab
// that started it, ...ConversationOpened in every page and tab it is loaded
// into), the ready event fires again once the page may start another
// conversation, and prechatAPI throws while a conversation exists.

// messagingFresh is messaging.html's log of a fresh conversation: the
// fields set between the ready event and the conversation start (started
// is the start event's name).
func messagingFresh(started string) string {
	return `[` + messagingInit + `, ["onEmbeddedMessagingReady"], ["document", 200],` + messagingFields +
		`, ["launchChat"], ["` + started + `"], ["onEmbeddedMessagingConversationOpened"]]`
}

// hasStep is a JavaScript expression: the Messaging log of the page holds
// step at least n times.
func hasStep(step string, n int) string {
	return `(window.__messagingLog || []).filter(function (c) { return c[0] === '` + step + `'; }).length >= ` + jsonString(n)
}

// assertNothingWrong checks that the page saw no prechatAPI call the
// stand-in refused, no onError, and no exception.
func assertNothingWrong(t *testing.T, b *browsertest.Browser) {
	t.Helper()
	browsertest.AssertJSON(t, "prechatAPI calls the stand-in refused", b.Eval(`window.__messagingViolations`), `[]`)
	browsertest.AssertJSON(t, "onError calls", b.Eval(`window.__prechatErrors`), `[]`)
	b.AssertNoExceptions()
}

// startAndWait clicks the page's start button and waits for the stand-in
// to log the n-th step.
func startAndWait(b *browsertest.Browser, step string, n int) {
	b.Do(10*time.Second, chromedp.Click(chromedp.ID("start")))
	b.Poll(30*time.Second, hasStep(step, n))
}

// TestBrowserMessagingOlderBuild: builds that name the conversation start
// onEmbeddedMessagingConversationCreated get the same behaviour: the fields
// before it, and none after it. The old snippet listened for ...Started
// only: when the conversation was created before the document arrived it
// called setHiddenPrechatFields late, which threw.
func TestBrowserMessagingOlderBuild(t *testing.T) {
	t.Parallel()
	t.Run("fresh conversation", func(t *testing.T) {
		t.Parallel()
		s, b := browserPage(t)
		b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging.html?build=old"))
		b.Poll(10*time.Second, `window.__ready === true && __messagingLog.length === 2`)
		startAndWait(b, "onEmbeddedMessagingConversationOpened", 1)
		want := messagingFresh("onEmbeddedMessagingConversationCreated")
		browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), want)
		assertSecondStartChangesNothing(t, b, s, "Messaging for Web calls", `window.__messagingLog`, want)
		assertNothingWrong(t, b)
	})
	t.Run("created before the document", func(t *testing.T) {
		t.Parallel()
		s, b := browserPage(t)
		b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging.html?build=old"))
		b.Poll(10*time.Second, `window.__ready === true && __messagingLog.length === 2`)
		b.Do(10*time.Second, chromedp.Click(chromedp.ID("launch")))
		b.Poll(10*time.Second, hasStep("onEmbeddedMessagingConversationOpened", 1))
		startAndWait(b, "document", 1)
		b.Poll(10*time.Second, `window.__prechatErrors.length > 0`)
		errs := browsertest.Eval[[]string](b, `window.__prechatErrors`)
		if len(errs) != 1 || !strings.Contains(errs[0], "the conversation already started, the pre-chat fields were not set") {
			t.Errorf("onError got %q, want one error about the started conversation", errs)
		}
		browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), `[`+messagingInit+
			`, ["onEmbeddedMessagingReady"], ["launchChat"], ["onEmbeddedMessagingConversationCreated"], ["onEmbeddedMessagingConversationOpened"], ["document", 200]]`)
		browsertest.AssertJSON(t, "prechatAPI calls the stand-in refused", b.Eval(`window.__messagingViolations`), `[]`)
		b.AssertNoExceptions()
	})
}

// TestBrowserMessagingReopened: the visitor started a conversation and goes
// to another page of the site, where Messaging reopens it
// (onEmbeddedMessagingConversationOpened after the ready event). That page
// sends a conversation start too: its document arrives, and the snippet
// sets nothing (the fields were set where the conversation started; they
// can no longer be), reports nothing and calls no onApplied; start()
// resolves to null. The old snippet called setHiddenPrechatFields there,
// which threw, and reported it.
func TestBrowserMessagingReopened(t *testing.T) {
	t.Parallel()
	s, b := browserPage(t)
	b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging.html"))
	b.Poll(10*time.Second, `window.__ready === true && __messagingLog.length === 2`)
	startAndWait(b, "onEmbeddedMessagingConversationOpened", 1)
	browsertest.AssertJSON(t, "the first page's calls and events", b.Eval(`window.__messagingLog`), messagingFresh("onEmbeddedMessagingConversationStarted"))

	b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging.html?page=2"))
	b.Poll(10*time.Second, `window.__ready === true && `+hasStep("onEmbeddedMessagingConversationOpened", 1))
	startAndWait(b, "document", 1)
	time.Sleep(300 * time.Millisecond)
	browsertest.AssertJSON(t, "the second page's calls and events", b.Eval(`window.__messagingLog`), `[`+messagingInit+
		`, ["onEmbeddedMessagingReady"], ["onEmbeddedMessagingConversationOpened"], ["document", 200]]`)
	browsertest.AssertJSON(t, "onApplied calls", b.Eval(`window.__prechatApplied`), `[]`)
	// A start from the page itself fetches the document again and resolves
	// to null, quietly.
	browsertest.AssertJSON(t, "prechat.start() on the reopened page", b.Eval(`prechat.start({wait: 1})`, chromedp.EvalAwaitPromise), `null`)
	browsertest.AssertJSON(t, "the second page's calls and events", b.Eval(`window.__messagingLog.filter(function (c) { return c[0] !== 'document'; })`),
		`[`+messagingInit+`, ["onEmbeddedMessagingReady"], ["onEmbeddedMessagingConversationOpened"]]`)
	assertNothingWrong(t, b)
	b.AssertLocal(s.url)
}

// TestBrowserMessagingSecondConversation: after the first conversation ended
// and its window closed, Messaging fires onEmbeddedMessagingReady again; the
// visitor's next conversation start on the same page gets its own document,
// set before that conversation starts: Case fields from the new start. Each
// document was fetched with the secret of its own start. The old snippet
// applied one document per page and set nothing the second time.
func TestBrowserMessagingSecondConversation(t *testing.T) {
	t.Parallel()
	s, b := browserPage(t)
	b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging.html"))
	b.Poll(10*time.Second, `window.__ready === true && __messagingLog.length === 2`)
	startAndWait(b, "onEmbeddedMessagingConversationOpened", 1)

	b.Eval(`__messagingStandIn.end()`)
	b.Poll(10*time.Second, hasStep("onEmbeddedMessagingReady", 2))
	b.Eval(`void analytics.track('Live Chat Conversation Started', { caseStatus: 'Escalated', subject: 'Returns' })`)
	b.Poll(30*time.Second, hasStep("onEmbeddedMessagingConversationOpened", 2))

	first := strings.TrimSuffix(messagingFresh("onEmbeddedMessagingConversationStarted"), "]")
	browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), first+`,
		["onEmbeddedMessagingConversationClosed"], ["onEmbeddedMessagingReady"], ["document", 200],
		["setHiddenPrechatFields", {"Email": "ada@example.com", "Case_Status": "Escalated", "Account_Website": "acme.test", "Account_Revenue": "100"}],
		["setVisiblePrechatFields", {
			"_email": {"value": "ada@example.com", "isEditableByEndUser": false},
			"_firstName": {"value": "Ada", "isEditableByEndUser": false},
			"_lastName": {"value": "Lovelace", "isEditableByEndUser": false},
			"_subject": {"value": "Returns", "isEditableByEndUser": false}}],
		["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"]]`)
	docs := browsertest.Eval[[]map[string]any](b, `window.__prechatApplied`)
	if len(docs) != 2 || docs[0]["conversationMessageId"] == docs[1]["conversationMessageId"] {
		t.Fatalf("onApplied got %d documents, want one per conversation start", len(docs))
	}
	assertFetchedWithEachSecret(t, s, 2)
	assertNothingWrong(t, b)
	b.AssertLocal(s.url)
}

// TestBrowserMessagingTwoTabs: two tabs of the site are open when the
// visitor starts a conversation in the first; Messaging opens it in the
// second too. A conversation start in the second tab sets nothing there and
// reports nothing (the old snippet called setHiddenPrechatFields, which
// threw). Once the conversation ended, the second tab starts the next one
// with its own document, and the first tab opens it.
func TestBrowserMessagingTwoTabs(t *testing.T) {
	t.Parallel()
	s, one := browserPage(t)
	one.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging.html"))
	one.Poll(10*time.Second, `window.__ready === true && __messagingLog.length === 2`)
	two := one.NewTab()
	two.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging.html"))
	two.Poll(10*time.Second, `window.__ready === true && __messagingLog.length === 2`)
	if a, b := browsertest.Eval[string](one, `prechat.anonymousId()`), browsertest.Eval[string](two, `prechat.anonymousId()`); a == "" || a != b {
		t.Fatalf("the tabs' visitors are %q and %q, want one", a, b)
	}

	startAndWait(one, "onEmbeddedMessagingConversationOpened", 1)
	two.Poll(10*time.Second, hasStep("onEmbeddedMessagingConversationOpened", 1))
	startAndWait(two, "document", 1)
	time.Sleep(300 * time.Millisecond)
	fresh := messagingFresh("onEmbeddedMessagingConversationStarted")
	browsertest.AssertJSON(t, "the first tab's calls and events", one.Eval(`window.__messagingLog`), fresh)
	browsertest.AssertJSON(t, "the second tab's calls and events", two.Eval(`window.__messagingLog`), `[`+messagingInit+
		`, ["onEmbeddedMessagingReady"], ["onEmbeddedMessagingConversationOpened"], ["document", 200]]`)
	browsertest.AssertJSON(t, "the second tab's onApplied calls", two.Eval(`window.__prechatApplied`), `[]`)
	assertNothingWrong(t, two)

	// The conversation ends; the next one starts in the second tab.
	one.Eval(`__messagingStandIn.end()`)
	one.Poll(10*time.Second, hasStep("onEmbeddedMessagingReady", 2))
	two.Poll(10*time.Second, hasStep("onEmbeddedMessagingReady", 2))
	startAndWait(two, "onEmbeddedMessagingConversationStarted", 1)
	one.Poll(10*time.Second, hasStep("onEmbeddedMessagingConversationOpened", 2))
	browsertest.AssertJSON(t, "the second tab's calls and events", two.Eval(`window.__messagingLog.slice(4)`),
		`[["onEmbeddedMessagingConversationClosed"], ["onEmbeddedMessagingReady"], ["document", 200],`+messagingFields+
			`, ["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"]]`)
	browsertest.AssertJSON(t, "the first tab's calls and events", one.Eval(`window.__messagingLog`), strings.TrimSuffix(fresh, "]")+
		`, ["onEmbeddedMessagingConversationClosed"], ["onEmbeddedMessagingReady"], ["onEmbeddedMessagingConversationOpened"]]`)
	if n := browsertest.Eval[int](one, `window.__prechatApplied.length`); n != 1 {
		t.Errorf("the first tab applied %d documents, want 1", n)
	}
	assertNothingWrong(t, one)
	assertNothingWrong(t, two)
}

// The Messaging for Web fields of verified.html's user grace (whom the
// site's server identified, and put in the company navy) and of an
// unverified visitor whose conversation start says caseStatus New, subject
// COBOL.
const (
	graceMessagingFields = `
		["setHiddenPrechatFields", {"Email": "grace@example.com", "Case_Status": "New", "Account_Website": "navy.test", "Account_Revenue": "42"}],
		["setVisiblePrechatFields", {
			"_email": {"value": "grace@example.com", "isEditableByEndUser": false},
			"_firstName": {"value": "Grace", "isEditableByEndUser": false},
			"_lastName": {"value": "Hopper", "isEditableByEndUser": false},
			"_subject": {"value": "COBOL", "isEditableByEndUser": false}}]`
	anonymousMessagingFields = `
		["setHiddenPrechatFields", {"Case_Status": "New"}],
		["setVisiblePrechatFields", {"_subject": {"value": "COBOL", "isEditableByEndUser": false}}]`
)

// TestBrowserMessagingUserVerification: a page that uses Messaging's User
// Verification, and nothing else for Prechat (it never identifies the user
// with analytics.js), gets the verified user's cross-device traits: the
// snippet forwards the token the page gave setIdentityToken with the
// conversation start, as context.prechat.identityToken, and the token's sub
// as the start's userId. So does a page that hands the token to
// prechat.start({identityToken}). An expired token, or one signed by a key
// the deployment does not trust, reaches nothing beyond the page's own
// conversation start.
func TestBrowserMessagingUserVerification(t *testing.T) {
	t.Parallel()
	requireBrowserDeps(t)
	s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: browserRoutes(), record: true})
	now := time.Now()
	serverIdentifiesGrace(t, s, now)
	waitApplied(t, s, "srv-identify", "srv-group")

	valid := mappingtest.IdentityToken("grace", now.Add(time.Hour))
	for _, c := range []struct {
		name, token, via string
		verified         bool
	}{
		{"setIdentityToken", valid, "", true},
		{"prechat.start", valid, "start", true},
		{"expired token", mappingtest.IdentityToken("grace", now.Add(-time.Hour)), "", false},
		{"another site's token", foreignToken(t, "grace", now.Add(time.Hour)), "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t)
			q := url.Values{"token": {c.token}}
			setToken := `["setIdentityToken", "JWT"], `
			if c.via != "" {
				q.Set("via", c.via)
				setToken = ""
			}
			b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging-verified.html?"+q.Encode()))
			b.Poll(10*time.Second, `window.__ready === true && `+hasStep("onEmbeddedMessagingReady", 1))
			startAndWait(b, "onEmbeddedMessagingConversationOpened", 1)

			fields := anonymousMessagingFields
			if c.verified {
				fields = graceMessagingFields
			}
			browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), `[`+messagingInit+
				`, ["onEmbeddedMessagingReady"], `+setToken+`["document", 200], `+fields+
				`, ["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"]]`)
			doc := browsertest.Eval[map[string]any](b, `window.__prechatApplied[0]`)
			if got, _ := doc["userVerified"].(bool); got != c.verified || doc["userId"] != "grace" {
				t.Errorf("the document's userId %v, userVerified %v; want grace, verified %t", doc["userId"], doc["userVerified"], c.verified)
			}
			// The conversation start carried the token and its sub.
			anon := browsertest.Eval[string](b, `prechat.anonymousId()`)
			starts := conversationStarts(t, s, anon)
			if len(starts) != 1 || starts[0].Context.Prechat.IdentityToken != c.token || starts[0].UserID != "grace" {
				t.Errorf("the conversation starts of %s: %+v; want one with the token and userId grace", anon, starts)
			}
			assertNothingWrong(t, b)
			b.AssertLocal(s.url)
		})
	}
}

// TestBrowserMessagingLogout: a verified user's conversation ran on the
// page; the site logs the user out (clearSession, analytics.reset) and
// Messaging fires the ready event again. The next conversation start on that
// page is an anonymous visitor's: the snippet forgot the user's document,
// token, events and conversation secret, so the new start carries no token
// and no userId, the fetch waits for no event of the user, and the fields
// set are the new visitor's own. The old snippet kept the user's document
// applied and set nothing.
func TestBrowserMessagingLogout(t *testing.T) {
	t.Parallel()
	requireBrowserDeps(t)
	s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: browserRoutes(), record: true})
	now := time.Now()
	serverIdentifiesGrace(t, s, now)
	waitApplied(t, s, "srv-identify", "srv-group")
	b := newBrowser(t)
	token := mappingtest.IdentityToken("grace", now.Add(time.Hour))
	b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging-verified.html?"+url.Values{"token": {token}}.Encode()))
	b.Poll(10*time.Second, `window.__ready === true && `+hasStep("setIdentityToken", 1))
	startAndWait(b, "onEmbeddedMessagingConversationOpened", 1)
	grace := browsertest.Eval[string](b, `prechat.anonymousId()`)

	b.Do(10*time.Second, chromedp.Click(chromedp.ID("logout")))
	b.Poll(10*time.Second, hasStep("onEmbeddedMessagingReady", 2))
	startAndWait(b, "onEmbeddedMessagingConversationOpened", 2)
	visitor := browsertest.Eval[string](b, `prechat.anonymousId()`)
	if visitor == grace || visitor == "" {
		t.Fatalf("after analytics.reset() the anonymousId is %q (grace's was %q)", visitor, grace)
	}
	browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), `[`+messagingInit+
		`, ["onEmbeddedMessagingReady"], ["setIdentityToken", "JWT"], ["document", 200], `+graceMessagingFields+
		`, ["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"],
		["clearSession", true], ["onEmbeddedMessagingConversationClosed"], ["onEmbeddedMessagingReady"], ["document", 200], `+anonymousMessagingFields+
		`, ["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"]]`)
	docs := browsertest.Eval[[]map[string]any](b, `window.__prechatApplied`)
	if len(docs) != 2 || docs[0]["anonymousId"] != grace || docs[1]["anonymousId"] != visitor || docs[1]["userId"] != nil {
		t.Errorf("onApplied got %d documents: want grace's, then the anonymous visitor's without a userId", len(docs))
	}
	starts := conversationStarts(t, s, visitor)
	if len(starts) != 1 || starts[0].UserID != "" || starts[0].Context.Prechat.IdentityToken != "" {
		t.Errorf("the visitor's conversation starts: %+v; want one without a token or userId", starts)
	}
	// The visitor's fetch waited for its own conversation start only.
	for _, r := range s.recorded() {
		if r.path == "/v1/prechat/"+visitor {
			q, _ := url.ParseQuery(r.query)
			if after := strings.Split(q.Get("after"), ","); len(after) != 1 || after[0] != starts[0].MessageID {
				t.Errorf("the visitor's fetch waited for %v, want only %s", after, starts[0].MessageID)
			}
		}
	}
	assertNothingWrong(t, b)
	b.AssertLocal(s.url)
}

// TestBrowserMessagingStrictCSP runs Messaging for Web end to end on a page
// whose Content-Security-Policy allows no inline script, no eval and no
// inline style: with scripts and connections of its own origin only, and
// with nonce-only scripts ('strict-dynamic') and Trusted Types required for
// script sinks. The snippet, analytics-next and the stand-in work, and the
// page reports no violation but the one of its inline script, there to show
// the policy is in force. The policies are those docs/migration-guide.md
// gives, with the API, the ingest and Salesforce on the page's origin.
func TestBrowserMessagingStrictCSP(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"self", "nonce"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			s, b := browserPage(t)
			b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/csp.html?policy="+policy))
			b.Poll(10*time.Second, `window.__ready === true && __messagingLog.length === 2`)
			startAndWait(b, "onEmbeddedMessagingConversationOpened", 1)
			browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), messagingFresh("onEmbeddedMessagingConversationStarted"))
			// The policy is in force: the page's one inline script was
			// blocked, and nothing else was.
			browsertest.AssertJSON(t, "Content-Security-Policy violations", b.Eval(`window.__cspViolations`), `[["script-src-elem", "inline"]]`)
			if browsertest.Eval[bool](b, `!!window.__inlineRan`) {
				t.Error("the inline script ran: the page is not under the policy")
			}
			assertNothingWrong(t, b)
			b.AssertLocal(s.url)
		})
	}
}

// cspPolicies are TestBrowserMessagingStrictCSP's Content-Security-Policy
// headers; NONCE stands for the response's nonce.
var cspPolicies = map[string]string{
	"self": "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; " +
		"base-uri 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'none'",
	"nonce": "default-src 'none'; script-src 'nonce-NONCE' 'strict-dynamic'; connect-src 'self'; img-src 'self' data:; " +
		"base-uri 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'",
}

// cspPage serves csp.html under the policy its ?policy= names, with a new
// nonce in the header and in the page's script tags.
func cspPage(path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		policy, ok := cspPolicies[r.URL.Query().Get("policy")]
		page, err := os.ReadFile(path)
		if !ok || err != nil {
			http.Error(w, "no such policy, or no page", http.StatusNotFound)
			return
		}
		nonce := rand.Text()
		w.Header().Set("Content-Security-Policy", strings.ReplaceAll(policy, "NONCE", nonce))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(strings.ReplaceAll(string(page), "__NONCE__", nonce)))
	})
}

// foreignToken is an identity token for userID that another site signed: a
// well-formed ES256 JWT with the trusted key's kid, under a key the
// deployment does not know.
func foreignToken(t *testing.T, userID string, exp time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return mappingtest.SignJWT("ES256", mappingtest.JWTKeyID, key, map[string]any{"sub": userID, "iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix()})
}

// startEvent is a conversation start as the API received it.
type startEvent struct {
	MessageID   string `json:"messageId"`
	AnonymousID string `json:"anonymousId"`
	UserID      string `json:"userId"`
	Context     struct {
		Prechat struct {
			IdentityToken string `json:"identityToken"`
			TokenHash     string `json:"tokenHash"`
		} `json:"prechat"`
	} `json:"context"`
}

// conversationStarts are the conversation starts of anonymousID that the
// API received (stackOptions.record), in order.
func conversationStarts(t *testing.T, s *stack, anonymousID string) []startEvent {
	t.Helper()
	var out []startEvent
	for _, r := range s.recorded() {
		if r.method != http.MethodPost || len(r.body) == 0 {
			continue
		}
		var e struct {
			startEvent
			Event string `json:"event"`
		}
		if json.Unmarshal(r.body, &e) == nil && e.Event == mapping.ConversationStarted && e.AnonymousID == anonymousID {
			out = append(out, e.startEvent)
		}
	}
	return out
}

// assertFetchedWithEachSecret checks, on what the API received, that the
// page sent n conversation starts, each with the hash of a new secret, and
// that its document fetches presented those secrets in the same order: each
// start's document was read with its own secret.
func assertFetchedWithEachSecret(t *testing.T, s *stack, n int) {
	t.Helper()
	var hashes, fetched []string
	for _, r := range s.recorded() {
		if r.method == http.MethodGet && strings.HasPrefix(r.path, "/v1/prechat/") && r.token != "" {
			if h := tokenHash(r.token); len(fetched) == 0 || fetched[len(fetched)-1] != h {
				fetched = append(fetched, h)
			}
		}
		var e startEvent
		if r.method == http.MethodPost && json.Unmarshal(r.body, &e) == nil && e.Context.Prechat.TokenHash != "" {
			hashes = append(hashes, e.Context.Prechat.TokenHash)
		}
	}
	if len(hashes) != n || len(fetched) != n {
		t.Fatalf("%d conversation starts with a token hash and fetches with %d secrets, want %d of each", len(hashes), len(fetched), n)
	}
	for i := range hashes {
		if hashes[i] != fetched[i] || (i > 0 && hashes[i] == hashes[i-1]) {
			t.Errorf("conversation start %d carried the hash %s, its fetch presented a secret of hash %s", i, hashes[i], fetched[i])
		}
	}
}

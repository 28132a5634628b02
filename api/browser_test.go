package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/browsertest"
	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/standins"
)

// The browser tests drive Debian's Chromium with chromedp through
// browsertest. The page uses the real @segment/analytics-next, bundled from
// testdata/browser by scripts/browser-deps, which also installs Chromium.
const (
	browserDir = "testdata/browser"
	// standInJS is the stand-in deployment.js, served beside the API.
	standInJS = "/test/deployment.js"
)

// originalCalls is what Segment's browser integration called for the
// visitor of page.html under mappingtest's settings.
var originalCalls = mappingtest.OriginalLiveAgentCalls("Shoes")

// TestBrowserConversationStart is the destination end to end: analytics-next
// sends identify, group and the conversation start to the ingest, the
// snippet's source middleware fetches the document once the consumer applied
// them, and replays on liveagent exactly the calls of the original
// integration, init last and once. page.html loads analytics-next before the
// snippet, late.html after it.
func TestBrowserConversationStart(t *testing.T) {
	t.Parallel()
	for _, page := range []string{"page.html", "late.html"} {
		t.Run(page, func(t *testing.T) {
			t.Parallel()
			s, b := browserPage(t)

			b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/"+page))
			b.Poll(10*time.Second, `window.__ready === true`)
			b.Do(10*time.Second, chromedp.Click(chromedp.ID("start")))
			b.Poll(30*time.Second, `(window.__liveagentCalls || []).some(function (c) { return c[0] === 'init'; })`)
			browsertest.AssertJSON(t, "liveagent calls", b.Eval(`window.__liveagentCalls`), originalCalls)

			// The document is the one of the visitor analytics-next identified.
			anon := browsertest.Eval[string](b, `window.__prechatApplied[0].anonymousId`)
			if want := browsertest.Eval[string](b, `prechat.anonymousId()`); anon == "" || anon != want {
				t.Errorf("applied the document of %q, want the visitor's anonymousId %q", anon, want)
			}

			assertSecondStartChangesNothing(t, b, s, "liveagent calls", `window.__liveagentCalls`, originalCalls)
			assertSecretOnlyInFetch(t, s)

			// Events went to the local ingest, and nothing left the local server.
			rs := b.Requests()
			for _, path := range []string{"/v1/i", "/v1/g", "/v1/t"} {
				if browsertest.CountPosts(rs, s.url+path) == 0 {
					t.Errorf("analytics-next did not POST %s; requests: %v", path, rs)
				}
			}
			b.AssertLocal(s.url)
			b.AssertNoExceptions()
		})
	}
}

// TestBrowserStart: without analytics.js, prechat.start() finds the visitor
// in the ajs_anonymous_id cookie, waits for the given events, and applies
// the document once.
func TestBrowserStart(t *testing.T) {
	t.Parallel()
	requireBrowserDeps(t)
	s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: browserRoutes()})
	anon := "browser-start-api"
	identify, group, start := visitorEvents(anon, time.Now())
	res := s.do("POST", "/v1/batch", `{"writeKey":"`+testWriteKey+`","batch":[`+identify+`,`+group+`,`+start+`]}`, nil)
	if res.status != http.StatusOK {
		t.Fatalf("ingest: %d %s", res.status, res.body)
	}
	b := newBrowser(t)

	b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/plain.html"))
	// analytics.js 1.x wrote the cookie URL-encoded and JSON-quoted.
	got := browsertest.Eval[string](b, `document.cookie = 'ajs_anonymous_id=%22`+anon+`%22; path=/'; prechat.anonymousId()`)
	if got != anon {
		t.Errorf("prechat.anonymousId() = %q, want %q", got, anon)
	}
	// The conversation start was sent server-side with the hash of a secret
	// the page holds: without the secret there is no document, with it
	// there is.
	after := `after: ['` + anon + `-i', '` + anon + `-g', '` + anon + `-c']`
	if doc := b.Eval(`prechat.start({wait: 1, `+after+`})`, chromedp.EvalAwaitPromise); string(doc) != "null" {
		t.Errorf("start() without the secret resolved to %s", doc)
	}
	if errs := browsertest.Eval[[]string](b, `window.__prechatErrors.splice(0)`); len(errs) != 1 || !strings.Contains(errs[0], "no pre-chat document") {
		t.Errorf("onError got %q, want one error about the missing document", errs)
	}
	doc := browsertest.Eval[map[string]any](b, `prechat.start({token: '`+secretOf(anon)+`', `+after+`})`, chromedp.EvalAwaitPromise)
	if doc["anonymousId"] != anon || doc["complete"] != true {
		t.Errorf("start() resolved to %v", doc)
	}
	browsertest.AssertJSON(t, "liveagent calls", b.Eval(`window.__liveagentCalls`), originalCalls)

	// A second start resolves to the applied document and calls nothing.
	again := browsertest.Eval[map[string]any](b, `prechat.start({anonymousId: 'someone-else'})`, chromedp.EvalAwaitPromise)
	if again["anonymousId"] != anon {
		t.Errorf("the second start() resolved to %v", again)
	}
	browsertest.AssertJSON(t, "liveagent calls after a second start", b.Eval(`window.__liveagentCalls`), originalCalls)
	browsertest.AssertJSON(t, "onError calls", b.Eval(`window.__prechatErrors`), `[]`)
	b.AssertLocal(s.url)
	b.AssertNoExceptions()
}

// TestBrowserNoConversation: a page that never starts a conversation loads
// deployment.js and never calls liveagent, so the page keeps full use of it;
// a start without a document reports an error and calls nothing.
func TestBrowserNoConversation(t *testing.T) {
	t.Parallel()
	s, b := browserPage(t)

	b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/plain.html"))
	b.Poll(10*time.Second, `typeof window.liveagent === 'object' && typeof liveagent.init === 'function'`)
	// The page's load event waits for deployment.js, whose load handler
	// settles the snippet; a timer queued after it runs after whatever that
	// handler queued.
	b.Poll(10*time.Second, `document.readyState === 'complete'`)
	b.Eval(nextTask, chromedp.EvalAwaitPromise)
	browsertest.AssertJSON(t, "liveagent calls", b.Eval(`window.__liveagentCalls`), `[]`)
	browsertest.AssertJSON(t, "onError calls", b.Eval(`window.__prechatErrors`), `[]`)

	// start resolves to null when there is no document: 404 after wait=0.
	doc := b.Eval(`prechat.start({anonymousId: 'nobody', wait: 0})`, chromedp.EvalAwaitPromise)
	browsertest.AssertJSON(t, "start() without a document", doc, `null`)
	errs := browsertest.Eval[[]string](b, `window.__prechatErrors`)
	if len(errs) != 1 || !strings.Contains(errs[0], "no pre-chat document") {
		t.Errorf("onError got %q, want one error about the missing document", errs)
	}
	browsertest.AssertJSON(t, "liveagent calls after a failed start", b.Eval(`window.__liveagentCalls`), `[]`)
	b.AssertLocal(s.url)
	b.AssertNoExceptions()
}

// TestBrowserDeploymentMissing: when deployment.js does not load, onError
// says so, and a conversation start whose document exists reports that it
// cannot apply it; the page sees no exception.
func TestBrowserDeploymentMissing(t *testing.T) {
	t.Parallel()
	requireBrowserDeps(t)
	s := newStack(t, stackOptions{deploymentJS: "/test/missing/deployment.js", extraRoutes: browserRoutes()})
	anon := "browser-missing-deployment"
	identify, group, start := visitorEvents(anon, time.Now())
	res := s.do("POST", "/v1/batch", `{"writeKey":"`+testWriteKey+`","batch":[`+identify+`,`+group+`,`+start+`]}`, nil)
	if res.status != http.StatusOK {
		t.Fatalf("ingest: %d %s", res.status, res.body)
	}
	b := newBrowser(t)

	b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/plain.html"))
	b.Poll(10*time.Second, `window.__prechatErrors.length > 0`)
	errs := browsertest.Eval[[]string](b, `window.__prechatErrors`)
	if len(errs) != 1 || !strings.Contains(errs[0], "could not load /test/missing/deployment.js") {
		t.Errorf("onError got %q, want one error about deployment.js", errs)
	}
	if typ := browsertest.Eval[string](b, `typeof window.liveagent`); typ != "undefined" {
		t.Errorf("typeof liveagent = %q", typ)
	}

	doc := b.Eval(`prechat.start({anonymousId: '`+anon+`', token: '`+secretOf(anon)+`', after: ['`+anon+`-c'], wait: 10})`, chromedp.EvalAwaitPromise)
	browsertest.AssertJSON(t, "start() without liveagent", doc, `null`)
	errs = browsertest.Eval[[]string](b, `window.__prechatErrors`)
	if len(errs) != 2 || !strings.Contains(errs[1], "no liveagent") {
		t.Errorf("onError got %q, want a second error about liveagent", errs)
	}
	b.AssertLocal(s.url)
	b.AssertNoExceptions()
}

// The Embedded Service Chat and Messaging for Web pages run the same
// visitor as page.html under mappingtest's settings, which target all three
// products: what each product receives is exactly what the mappings
// describe, values as text.
const (
	// eswInit is embedded_svc.init's arguments.
	eswInit = `[
		"https://example.my.salesforce.com", "https://example.my.site.com/support", "https://service.force.com",
		"00D3D000000DIdG", "Prechat_Chat",
		{"baseLiveAgentContentURL": "https://c.la3-c1cs-phx.salesforceliveagent.com/content",
		 "deploymentId": "5723D00000000F4", "buttonId": "5733D00000000Ab",
		 "baseLiveAgentURL": "https://d.la3-c1cs-phx.salesforceliveagent.com/chat",
		 "eswLiveAgentDevName": "EmbeddedServiceLiveAgent_Parent04I3D000000001", "isOfflineSupportEnabled": false}
	]`
	// eswSettings is embedded_svc.settings when init is called: the page's
	// own settings, its Origin detail first, then the document's.
	eswSettings = `{
		"displayHelpButton": false,
		"language": "en-US",
		"extraPrechatFormDetails": [
			{"label": "Origin", "value": "Web", "displayToAgent": false, "transcriptFields": ["Origin__c"]},
			{"label": "User Email", "value": "ada@example.com", "displayToAgent": true, "transcriptFields": []},
			{"label": "First Name", "value": "Ada", "displayToAgent": true, "transcriptFields": []},
			{"label": "Last Name", "value": "Lovelace", "displayToAgent": true, "transcriptFields": []},
			{"label": "Case Status", "value": "New", "displayToAgent": true, "transcriptFields": []},
			{"label": "Subject", "value": "Shoes", "displayToAgent": true, "transcriptFields": []},
			{"label": "Account Website", "value": "acme.test", "displayToAgent": true, "transcriptFields": []},
			{"label": "Account Revenue", "value": "100", "displayToAgent": true, "transcriptFields": []}
		],
		"extraPrechatInfo": [
			{"entityName": "Contact", "showOnCreate": false, "saveToTranscript": "", "entityFieldMaps": [
				{"fieldName": "Email", "label": "User Email", "doFind": true, "isExactMatch": true, "doCreate": true},
				{"fieldName": "FirstName", "label": "First Name", "doFind": false, "isExactMatch": false, "doCreate": true},
				{"fieldName": "LastName", "label": "Last Name", "doFind": false, "isExactMatch": true, "doCreate": true}]},
			{"entityName": "Case", "showOnCreate": false, "saveToTranscript": "", "entityFieldMaps": [
				{"fieldName": "Status", "label": "Case Status", "doFind": false, "isExactMatch": false, "doCreate": false},
				{"fieldName": "Subject", "label": "Subject", "doFind": false, "isExactMatch": false, "doCreate": true}]},
			{"entityName": "Account", "showOnCreate": false, "saveToTranscript": "", "entityFieldMaps": [
				{"fieldName": "Website", "label": "Account Website", "doFind": true, "isExactMatch": true, "doCreate": false},
				{"fieldName": "AnnualRevenue", "label": "Account Revenue", "doFind": false, "isExactMatch": false, "doCreate": false}]}
		],
		"prepopulatedPrechatFields": {"Email": "ada@example.com", "FirstName": "Ada", "LastName": "Lovelace", "Subject": "Shoes"}
	}`
	// messagingInit is the page's own embeddedservice_bootstrap.init.
	messagingInit = `["init", "00D3D000000DIdG", "Prechat_Messaging", "https://example.my.site.com/ESWPrechatMessaging1",
		{"scrt2URL": "https://example.my.salesforce-scrt.com"}]`
	// messagingFields are the pre-chat calls: hidden fields by each
	// mapping's messagingField, the visible standard fields not editable
	// (visibleFieldsEditable is false).
	messagingFields = `
		["setHiddenPrechatFields", {"Email": "ada@example.com", "Case_Status": "New", "Account_Website": "acme.test", "Account_Revenue": "100"}],
		["setVisiblePrechatFields", {
			"_email": {"value": "ada@example.com", "isEditableByEndUser": false},
			"_firstName": {"value": "Ada", "isEditableByEndUser": false},
			"_lastName": {"value": "Lovelace", "isEditableByEndUser": false},
			"_subject": {"value": "Shoes", "isEditableByEndUser": false}}]`
)

// TestBrowserEmbeddedChat is Embedded Service Chat end to end, driven by
// analytics-next: on the conversation start the snippet adds the document's
// extraPrechatFormDetails, extraPrechatInfo and prepopulatedPrechatFields
// to the page's embedded_svc.settings, then calls embedded_svc.init once
// with the settings' arguments, and never loads deployment.js. On
// embedded.html /v1/prechat.js finds embedded_svc and loads its variant; on
// embedded.html#late the variant is forced with ?product= and esw.js only
// loads after the document arrived, so the snippet waits for embedded_svc.
func TestBrowserEmbeddedChat(t *testing.T) {
	t.Parallel()
	for _, page := range []string{"embedded.html", "embedded.html#late"} {
		t.Run(page, func(t *testing.T) {
			t.Parallel()
			s, b := browserPage(t)

			b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/"+page))
			b.Poll(10*time.Second, `window.__ready === true && !!window.prechat`)
			if p := browsertest.Eval[string](b, `prechat.product`); p != "embeddedChat" {
				t.Fatalf("prechat.product = %q, want embeddedChat", p)
			}
			b.Do(10*time.Second, chromedp.Click(chromedp.ID("start")))
			b.Poll(30*time.Second, `(window.__eswLog || []).some(function (c) { return c[0] === 'bootstrapEmbeddedService'; })`)
			want := `[["init", ` + eswInit + `, ` + eswSettings + `], ["bootstrapEmbeddedService"]]`
			browsertest.AssertJSON(t, "embedded_svc calls", b.Eval(`window.__eswLog`), want)
			// Nothing is set after init.
			browsertest.AssertJSON(t, "embedded_svc.settings after init", b.Eval(`embedded_svc.settings`), eswSettings)
			if page == "embedded.html#late" {
				browsertest.AssertJSON(t, "order", b.Eval(`window.__order`), `["document", "esw", "applied"]`)
			}

			assertSecondStartChangesNothing(t, b, s, "embedded_svc calls", `window.__eswLog`, want)
			assertSecretOnlyInFetch(t, s)
			rs := b.Requests()
			if !slices.ContainsFunc(rs, func(r browsertest.Request) bool { return r.URL == s.url+"/v1/prechat.js?product=embeddedChat" }) {
				t.Errorf("the embeddedChat variant was not loaded; requests: %v", rs)
			}
			if slices.ContainsFunc(rs, func(r browsertest.Request) bool { return strings.HasSuffix(r.URL, "deployment.js") }) {
				t.Errorf("deployment.js was loaded on an Embedded Service Chat page; requests: %v", rs)
			}
			b.AssertLocal(s.url)
			b.AssertNoExceptions()
		})
	}
}

// TestBrowserMessaging is Messaging for Web end to end, driven by
// analytics-next: the snippet sets the hidden and visible pre-chat fields
// after onEmbeddedMessagingReady and before the conversation starts, once.
// On messaging.html the ready event comes before the document, on
// messaging.html#late the document comes first and the snippet waits.
func TestBrowserMessaging(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ page, want string }{
		{"messaging.html", `[` + messagingInit + `, ["onEmbeddedMessagingReady"], ["document", 200],` + messagingFields +
			`, ["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"]]`},
		{"messaging.html#late", `[["document", 200], ` + messagingInit + `, ["onEmbeddedMessagingReady"],` + messagingFields +
			`, ["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"]]`},
	} {
		t.Run(c.page, func(t *testing.T) {
			t.Parallel()
			s, b := browserPage(t)

			b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/"+c.page))
			b.Poll(10*time.Second, `window.__ready === true`)
			if c.page == "messaging.html" {
				b.Poll(10*time.Second, `__messagingLog.length === 2`)
			}
			if p := browsertest.Eval[string](b, `prechat.product`); p != "messaging" {
				t.Fatalf("prechat.product = %q, want messaging", p)
			}
			b.Do(10*time.Second, chromedp.Click(chromedp.ID("start")))
			b.Poll(30*time.Second, `__messagingLog.some(function (c) { return c[0] === 'onEmbeddedMessagingConversationOpened'; })`)
			browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), c.want)
			browsertest.AssertJSON(t, "prechatAPI calls before ready or after the start", b.Eval(`window.__messagingViolations`), `[]`)

			assertSecondStartChangesNothing(t, b, s, "Messaging for Web calls", `window.__messagingLog`, c.want)
			assertSecretOnlyInFetch(t, s)
			if slices.ContainsFunc(b.Requests(), func(r browsertest.Request) bool { return strings.HasSuffix(r.URL, "deployment.js") }) {
				t.Errorf("deployment.js was loaded on a Messaging for Web page; requests: %v", b.Requests())
			}
			b.AssertLocal(s.url)
			b.AssertNoExceptions()
		})
	}
}

// TestBrowserMessagingAfterConversationStarted: when the conversation
// started before the document arrived, the snippet sets no field and
// reports it; the page sees no exception.
func TestBrowserMessagingAfterConversationStarted(t *testing.T) {
	t.Parallel()
	s, b := browserPage(t)

	b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging.html"))
	b.Poll(10*time.Second, `window.__ready === true && __messagingLog.length === 2`)
	b.Do(10*time.Second, chromedp.Click(chromedp.ID("launch")))
	b.Poll(10*time.Second, `__messagingLog.length === 5`)
	b.Do(10*time.Second, chromedp.Click(chromedp.ID("start")))
	b.Poll(30*time.Second, `window.__prechatErrors.length > 0`)
	errs := browsertest.Eval[[]string](b, `window.__prechatErrors`)
	if len(errs) != 1 || !strings.Contains(errs[0], "the conversation already started, the pre-chat fields were not set") {
		t.Errorf("onError got %q, want one error about the started conversation", errs)
	}
	browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), `[`+messagingInit+
		`, ["onEmbeddedMessagingReady"], ["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"], ["document", 200]]`)
	browsertest.AssertJSON(t, "prechatAPI calls before ready or after the start", b.Eval(`window.__messagingViolations`), `[]`)
	browsertest.AssertJSON(t, "onApplied calls", b.Eval(`window.__prechatApplied`), `[]`)
	b.AssertLocal(s.url)
	b.AssertNoExceptions()
}

// optionsSettings target all three products with entity options, transcript
// fields and channel variables, which mappingtest's settings (shared with
// the Legacy tests) leave out; optionsVisitor's document is built from them
// and served by the test server in place of the API's.
const (
	optionsVisitor  = "options-visitor"
	optionsSettings = `{
		"hostname": "c.la3-c1cs-phx", "liveAgentEndpointUrl": "d.la3-c1cs-phx",
		"deploymentId": "5723D00000000F4", "orgId": "00D3D000000DIdG", "enableLogging": true,
		"contactMappings": [
			{"key": "email", "value": {"trait": "email", "label": "User Email", "displayToAgent": true, "fieldName": "Email",
				"doFind": true, "isExactMatch": true, "doCreate": true, "transcriptFields": ["Email__c", "Visitor_Email__c"], "messagingField": "Email"}},
			{"trait": "lastName", "label": "Last Name", "fieldName": "LastName", "doCreate": true}],
		"caseMappings": [{"property": "subject", "label": "Subject", "displayToAgent": true, "fieldName": "Subject", "doCreate": true, "messagingField": "Case_Subject"}],
		"accountMappings": [{"property": "website", "label": "Account Website", "fieldName": "Website", "doFind": true, "isExactMatch": true}],
		"products": ["liveAgent", "embeddedChat", "messaging"],
		"entityOptions": {
			"Contact": {"saveToTranscript": "ContactId", "showOnCreate": true, "linkToEntity": {"entityName": "Account", "fieldName": "AccountId"}},
			"Case": {"saveToTranscript": "CaseId", "linkToEntity": {"entityName": "Contact", "fieldName": "ContactId"}},
			"Account": {"showOnCreate": true}},
		"embeddedChat": {"coreUrl": "https://acme.my.salesforce.com", "siteUrl": "https://acme.my.site.com/help", "deploymentName": "Web_Chat",
			"buttonId": "5733D00000000Zz", "eswLiveAgentDevName": "EmbeddedServiceLiveAgent_Parent04I000000000002"},
		"messaging": {}
	}`
	// optionsCalls are the Legacy Chat calls of optionsVisitor's document:
	// transcript fields chained on their detail, entity options after the
	// entity's maps, setName after Contact's, enableLogging after init.
	optionsCalls = `[
		["findOrCreate", "Contact"],
		["addCustomDetail", "User Email", "ada@example.com", true],
		["saveToTranscript", "Email__c"],
		["saveToTranscript", "Visitor_Email__c"],
		["map", "Email", "User Email", true, true, true],
		["addCustomDetail", "Last Name", "Lovelace", false],
		["map", "LastName", "Last Name", false, false, true],
		["saveToTranscript", "ContactId"],
		["showOnCreate"],
		["linkToEntity", "Account", "AccountId"],
		["setName", "Ada Lovelace"],
		["findOrCreate", "Case"],
		["addCustomDetail", "Subject", "Shoes", true],
		["map", "Subject", "Subject", false, false, true],
		["saveToTranscript", "CaseId"],
		["linkToEntity", "Contact", "ContactId"],
		["findOrCreate", "Account"],
		["addCustomDetail", "Account Website", "acme.test", false],
		["map", "Website", "Account Website", true, true, false],
		["showOnCreate"],
		["init", "https://d.la3-c1cs-phx.salesforceliveagent.com/chat", "5723D00000000F4", "00D3D000000DIdG"],
		["enableLogging"]
	]`
)

// optionsDocument builds optionsVisitor's document, and the route that
// serves it as GET /v1/prechat/options-visitor.
func optionsDocument(t *testing.T) (mapping.Document, map[string]http.Handler) {
	t.Helper()
	settings, err := mapping.ParseSettings([]byte(optionsSettings))
	if err != nil {
		t.Fatal(err)
	}
	identify, group, start := visitorEvents(optionsVisitor, time.Now())
	st := mapping.NewState()
	for _, raw := range []string{identify, group, start} {
		e, err := mapping.Decode([]byte(raw), "")
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(&e, time.Now())
	}
	v, ok := st.Visitor(optionsVisitor)
	if !ok {
		t.Fatal("no conversation start")
	}
	doc := settings.Build(v, 30*time.Minute)
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	routes := browserRoutes()
	routes["GET /v1/prechat/"+optionsVisitor] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	})
	return doc, routes
}

// TestBrowserEntityOptions applies a document with entity options,
// transcript fields and channel variables in each product: Legacy Chat
// gets exactly optionsCalls (which are also mapping.LiveAgentCalls),
// Embedded Service Chat and Messaging for Web exactly the document's
// renderings.
func TestBrowserEntityOptions(t *testing.T) {
	t.Parallel()
	doc, routes := optionsDocument(t)
	startJS := `prechat.start({anonymousId: '` + optionsVisitor + `', wait: 0})`

	t.Run("liveAgent", func(t *testing.T) {
		t.Parallel()
		requireBrowserDeps(t)
		s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: routes, noConsumer: true})
		b := newBrowser(t)
		b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/plain.html"))
		b.Poll(10*time.Second, `typeof window.liveagent === 'object'`)
		applied := browsertest.Eval[map[string]any](b, startJS, chromedp.EvalAwaitPromise)
		if applied["anonymousId"] != optionsVisitor {
			t.Fatalf("start() resolved to %v", applied)
		}
		browsertest.AssertJSON(t, "liveagent calls", b.Eval(`window.__liveagentCalls`), optionsCalls)
		browsertest.AssertJSON(t, "liveagent calls", b.Eval(`window.__liveagentCalls`), jsonString(mapping.LiveAgentCalls(&doc)))
		browsertest.AssertJSON(t, "onError calls", b.Eval(`window.__prechatErrors`), `[]`)
		b.AssertNoExceptions()
	})

	t.Run("embeddedChat", func(t *testing.T) {
		t.Parallel()
		requireBrowserDeps(t)
		s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: routes, noConsumer: true})
		b := newBrowser(t)
		b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/embedded.html"))
		b.Poll(10*time.Second, `window.__ready === true && !!window.prechat`)
		b.Eval(startJS, chromedp.EvalAwaitPromise)
		in := doc.EmbeddedChat.Init
		args := []any{in.CoreURL, in.SiteURL, in.GslbURL, in.OrgID, in.DeploymentName, in.Options}
		st := doc.EmbeddedChat.Settings
		settings := map[string]any{
			"displayHelpButton": false,
			"language":          "en-US",
			"extraPrechatFormDetails": append([]any{map[string]any{"label": "Origin", "value": "Web", "displayToAgent": false, "transcriptFields": []string{"Origin__c"}}},
				anySlice(st.ExtraPrechatFormDetails)...),
			"extraPrechatInfo":          st.ExtraPrechatInfo,
			"prepopulatedPrechatFields": st.PrepopulatedPrechatFields,
		}
		browsertest.AssertJSON(t, "embedded_svc calls", b.Eval(`window.__eswLog`), `[["init", `+jsonString(args)+`, `+jsonString(settings)+`], ["bootstrapEmbeddedService"]]`)
		// The transcript fields and entity options are in the settings.
		browsertest.AssertJSON(t, "Contact's prechat info", b.Eval(`__eswLog[0][2].extraPrechatInfo[0]`), `{
			"entityName": "Contact", "showOnCreate": true, "saveToTranscript": "ContactId",
			"linkToEntityName": "Account", "linkToEntityField": "AccountId", "entityFieldMaps": [
				{"fieldName": "Email", "label": "User Email", "doFind": true, "isExactMatch": true, "doCreate": true},
				{"fieldName": "LastName", "label": "Last Name", "doFind": false, "isExactMatch": false, "doCreate": true}]}`)
		browsertest.AssertJSON(t, "User Email's form detail", b.Eval(`__eswLog[0][2].extraPrechatFormDetails[1]`),
			`{"label": "User Email", "value": "ada@example.com", "displayToAgent": true, "transcriptFields": ["Email__c", "Visitor_Email__c"]}`)
		browsertest.AssertJSON(t, "onError calls", b.Eval(`window.__prechatErrors`), `[]`)
		b.AssertNoExceptions()
	})

	t.Run("messaging", func(t *testing.T) {
		t.Parallel()
		requireBrowserDeps(t)
		s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: routes, noConsumer: true})
		b := newBrowser(t)
		b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/messaging.html"))
		b.Poll(10*time.Second, `window.__ready === true && __messagingLog.length === 2`)
		b.Eval(startJS, chromedp.EvalAwaitPromise)
		b.Poll(10*time.Second, `__messagingLog.length === 8`)
		browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), `[`+messagingInit+`, ["onEmbeddedMessagingReady"], ["document", 200],
			["setHiddenPrechatFields", `+jsonString(doc.Messaging.HiddenFields)+`],
			["setVisiblePrechatFields", `+jsonString(doc.Messaging.VisibleFields)+`],
			["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"]]`)
		// Visible fields are editable unless the settings say otherwise.
		browsertest.AssertJSON(t, "visible fields", b.Eval(`__messagingLog[4][1]`), `{
			"_email": {"value": "ada@example.com", "isEditableByEndUser": true},
			"_lastName": {"value": "Lovelace", "isEditableByEndUser": true},
			"_subject": {"value": "Shoes", "isEditableByEndUser": true}}`)
		browsertest.AssertJSON(t, "hidden fields", b.Eval(`__messagingLog[3][1]`), `{"Email": "ada@example.com", "Case_Subject": "Shoes"}`)
		browsertest.AssertJSON(t, "onError calls", b.Eval(`window.__prechatErrors`), `[]`)
		b.AssertNoExceptions()
	})
}

func anySlice[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// TestBrowserSnippetSize checks the served snippets: /v1/prechat.js and
// the variant of each product, with the deployment.js URL filled in, each
// under 7 KB (6 KB until the snippet followed Messaging conversations across
// pages and forwarded identity tokens, which took the detecting variant to
// 6.4 KB); an unknown product is a 400.
func TestBrowserSnippetSize(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{})
	url, err := json.Marshal(mappingtest.Settings().ScriptURL())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query, product string
		detects        bool
	}{
		{"", "liveAgent", true},
		{"?product=liveAgent", "liveAgent", false},
		{"?product=embeddedChat", "embeddedChat", false},
		{"?product=messaging", "messaging", false},
	} {
		res := s.do("GET", "/v1/prechat.js"+c.query, "", nil)
		if res.status != http.StatusOK || res.header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Fatalf("GET /v1/prechat.js%s: %d %s %s", c.query, res.status, res.header.Get("Content-Type"), res.body)
		}
		body := string(res.body)
		if !strings.Contains(body, "var scriptUrl=https(cfg.scriptUrl)||"+string(url)+";") {
			t.Errorf("the snippet%s does not load %s:\n%s", c.query, url, body)
		}
		if !strings.Contains(body, `var product="`+c.product+`";`) {
			t.Errorf("the snippet%s is not the %s variant:\n%s", c.query, c.product, body)
		}
		if got := strings.Contains(body, "/v1/prechat.js?product="); got != c.detects {
			t.Errorf("the snippet%s loads other variants: %t, want %t", c.query, got, c.detects)
		}
		if strings.Contains(body, "__DEPLOYMENT_SCRIPT_URL__") || strings.Contains(body, "__PRODUCT__") || strings.Contains(body, "__GLOBAL__") {
			t.Errorf("the snippet%s still holds a placeholder", c.query)
		}
		if len(body) >= 7*1024 {
			t.Errorf("the snippet%s is %d bytes, want under 7 KB", c.query, len(body))
		}
		t.Logf("rendered snippet%s: %d bytes", c.query, len(body))
	}
	if res := s.do("GET", "/v1/prechat.js?product=chat", "", nil); res.status != http.StatusBadRequest {
		t.Errorf("GET /v1/prechat.js?product=chat: %d %s, want 400", res.status, res.body)
	}
}

// requireBrowserDeps fails the test when Chromium or the analytics-next
// bundle is missing.
func requireBrowserDeps(t *testing.T) {
	t.Helper()
	browsertest.Require(t, filepath.Join(browserDir, "build", "analytics.js"))
}

// browserPage starts the stack with the test pages and a Chromium for the
// test.
func browserPage(t *testing.T) (*stack, *browsertest.Browser) {
	t.Helper()
	requireBrowserDeps(t)
	return newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: browserRoutes(), record: true}), newBrowser(t)
}

// assertSecretOnlyInFetch checks, on what the API received from the page
// (stackOptions.record) and what the ingest produced, that each
// conversation start that analytics-next sent carried the hash of a new
// secret (context.prechat.tokenHash), that the document fetch presented the
// first start's secret in X-Prechat-Token, and that no secret is in any
// event body, URL or Kafka message.
func assertSecretOnlyInFetch(t *testing.T, s *stack) {
	t.Helper()
	var hashes, secrets []string
	var bodies [][]byte
	for _, r := range s.recorded() {
		bodies = append(bodies, []byte(r.path+"?"+r.query), r.body)
		if r.method == http.MethodGet && strings.HasPrefix(r.path, "/v1/prechat/") && r.token != "" {
			secrets = append(secrets, r.token)
		}
		if r.method != http.MethodPost || len(r.body) == 0 {
			continue
		}
		var e struct {
			Event   string `json:"event"`
			Context struct {
				Prechat struct {
					TokenHash string `json:"tokenHash"`
				} `json:"prechat"`
			} `json:"context"`
		}
		if err := json.Unmarshal(r.body, &e); err == nil && e.Event == mapping.ConversationStarted {
			hashes = append(hashes, e.Context.Prechat.TokenHash)
		}
	}
	for _, m := range s.topicMessages() {
		bodies = append(bodies, m.Value)
	}
	if len(hashes) != 2 || hashes[0] == hashes[1] || len(hashes[0]) != 64 {
		t.Fatalf("the two conversation starts carried token hashes %q, want two different SHA-256s", hashes)
	}
	if len(secrets) == 0 {
		t.Fatalf("no document fetch presented %s", api.TokenHeader)
	}
	for _, secret := range secrets {
		if tokenHash(secret) != hashes[0] || len(secret) != 64 {
			t.Errorf("the fetch presented %q, whose hash %s is not the first start's %s (or it is not 256 bits of hex)", secret, tokenHash(secret), hashes[0])
		}
		for _, b := range bodies {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("the secret %s reached an event body, URL or Kafka message: %s", secret, b)
			}
		}
	}
}

// newBrowser starts Chromium for the test; a wait that times out shows
// the liveagent calls and the snippet's errors.
func newBrowser(t *testing.T) *browsertest.Browser {
	t.Helper()
	return browsertest.New(t, browsertest.Options{Debug: []string{`window.__liveagentCalls`, `window.__prechatErrors`}})
}

// browserRoutes serves the test pages and scripts under /test/, on the
// API's origin.
// nextTask is a Promise that resolves in a task queued now: after every
// zero-delay timer the page queued before.
const nextTask = `new Promise(function (resolve) { setTimeout(resolve, 0); })`

// assertSecondStartChangesNothing clicks the page's start button again: once
// its track call is posted (the snippet's middleware queued the second
// start before it let the event go) and the start ran, the page fetched no
// second document, the product's recorded calls (log, a JavaScript
// expression; what names them) are still want, the snippet reported no
// error and onApplied ran once.
func assertSecondStartChangesNothing(t *testing.T, b *browsertest.Browser, s *stack, what, log, want string) {
	t.Helper()
	b.Do(10*time.Second, chromedp.Click(chromedp.ID("start")))
	b.WaitRequests(10*time.Second, func(rs []browsertest.Request) bool { return browsertest.CountPosts(rs, s.url+"/v1/t") >= 2 })
	b.Eval(nextTask, chromedp.EvalAwaitPromise)
	fetches := 0
	for _, r := range b.Requests() {
		if r.Method == "GET" && strings.HasPrefix(r.URL, s.url+"/v1/prechat/") {
			fetches++
		}
	}
	if fetches != 1 {
		t.Errorf("the page fetched the document %d times, want once: a second start must not fetch it again", fetches)
	}
	browsertest.AssertJSON(t, what+" after a second start", b.Eval(log), want)
	browsertest.AssertJSON(t, "onError calls", b.Eval(`window.__prechatErrors`), `[]`)
	if n := browsertest.Eval[int](b, `window.__prechatApplied.length`); n != 1 {
		t.Errorf("onApplied ran %d times, want 1", n)
	}
}

func browserRoutes() map[string]http.Handler {
	file := func(name string) http.Handler {
		path := filepath.Join(browserDir, name)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			http.ServeFile(w, r, path)
		})
	}
	standIn := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			http.ServeFileFS(w, r, standins.FS, name)
		})
	}
	return map[string]http.Handler{
		"GET /test/page.html":               file("page.html"),
		"GET /test/plain.html":              file("plain.html"),
		"GET /test/late.html":               file("late.html"),
		"GET /test/embedded.html":           file("embedded.html"),
		"GET /test/messaging.html":          file("messaging.html"),
		"GET /test/verified.html":           file("verified.html"),
		"GET /test/messaging-verified.html": file("messaging-verified.html"),
		"GET /test/csp.html":                cspPage(filepath.Join(browserDir, "csp.html")),
		"GET /test/csp-config.js":           file("csp-config.js"),
		"GET /test/csp-page.js":             file("csp-page.js"),
		"GET /test/esw.js":                  standIn("esw.js"),
		"GET /test/bootstrap.js":            standIn("bootstrap.js"),
		"GET /test/analytics.js":            file("build/analytics.js"),
		"GET /test/analytics-load.js":       file("analytics-load.js"),
		"GET " + standInJS:                  standIn("deployment.js"),
	}
}

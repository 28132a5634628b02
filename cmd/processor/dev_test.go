package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/prechat/prechat/browsertest"
	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// TestDevWithPrivatePostgres runs "processor dev" as a child process without
// DATABASE_URL: it initialises a private Postgres cluster in the data folder,
// ingests with the dev write key and serves documents; Ctrl-C stops it and
// its cluster; a second run on the same folder finds the earlier data.
func TestDevWithPrivatePostgres(t *testing.T) {
	t.Parallel()
	if _, err := pgBinary("initdb"); err != nil {
		t.Fatalf("%v (this test needs the Postgres server binaries)", err)
	}
	// As root the cluster runs as the postgres user, which must be able to
	// traverse the folder; t.TempDir's parents are private to root.
	dir, err := os.MkdirTemp("", "prechat-dev-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Runs after the child's own cleanup: should the child have been killed,
	// its cluster is shut down too (SIGQUIT: immediate shutdown).
	t.Cleanup(func() { stopOrphanPostgres(t, dir) })

	dev := startDev(t, nil, "--data-dir", dir, "--kafka-port", "0")
	banner := dev.stdout.String()
	for _, want := range []string{
		"Prechat dev is running",
		"Demo page   http://127.0.0.1:",
		`write key "dev-write-key"`,
		"/dev/user-hash?userId=…   plays the site's server: the userHash under the dev-only IDENTITY_SECRET",
		"private cluster in " + filepath.Join(dir, "postgres"),
		"in-process kfake broker, log in " + filepath.Join(dir, "kafka"),
		"Settings    " + filepath.Join(dir, "settings.json"),
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner)
		}
	}
	if !regexp.MustCompile(`Kafka +127\.0\.0\.1:\d+, topic segment-events`).MatchString(banner) {
		t.Errorf("the banner does not name the Kafka broker:\n%s", banner)
	}

	// The dev write key ingests; the document is served once applied.
	res := dev.request(http.MethodPost, "/v1/t", `{"writeKey":"dev-write-key","type":"track","event":"Live Chat Conversation Started","anonymousId":"dev-visitor","messageId":"dev-start-1","properties":{"subject":"Shoes","caseStatus":"New"},`+tokenContext+`}`)
	if res.status != http.StatusOK || !strings.Contains(res.body, `"success":true`) {
		t.Fatalf("ingest with the dev write key: %d %s", res.status, res.body)
	}
	if res := dev.request(http.MethodPost, "/v1/t", `{"writeKey":"not-the-key","event":"x","anonymousId":"a"}`); res.status != http.StatusUnauthorized {
		t.Errorf("ingest with another write key: %d, want 401", res.status)
	}
	res = dev.document("/v1/prechat/dev-visitor?wait=10&after=dev-start-1")
	if served, _ := servedDocument([]byte(res.body)); res.status != http.StatusOK || !hasDetail([]byte(res.body), "Subject", "Shoes") || !served.Complete {
		t.Fatalf("GET the document: %d %s", res.status, res.body)
	}
	// DOCUMENT_ACCESS is token by default: without the secret, 404.
	if res := dev.request(http.MethodGet, "/v1/prechat/dev-visitor", ""); res.status != http.StatusNotFound {
		t.Errorf("GET the document without the conversation secret: %d %s", res.status, res.body)
	}
	// The demo page, whatever its product, and its assets.
	for path, want := range map[string]string{
		"/":                                   "Pre-chat form",
		"/?product=messaging":                 `id="product-switch"`,
		"/dev/analytics.js":                   "@segment/analytics-next 1.84.3",
		"/dev/views.js":                       "PrechatViews",
		"/dev/deployment.js":                  "__liveagentCalls",
		"/dev/esw.js":                         "__eswLog",
		"/dev/bootstrap.js":                   "__messagingLog",
		"/v1/prechat.js":                      `"/dev/deployment.js"`,
		"/v1/prechat.js?product=embeddedChat": `var product="embeddedChat";`,
	} {
		if res := dev.request(http.MethodGet, path, ""); res.status != http.StatusOK || !strings.Contains(res.body, want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, res.status, want)
		}
	}

	dev.stop()
	assertPostgresStopped(t, dir)

	// The data folder is kept: a second run starts on it and still has the
	// document.
	dev = startDev(t, nil, "--data-dir", dir, "--kafka-port", "0")
	res = dev.document("/v1/prechat/dev-visitor")
	if res.status != http.StatusOK || !hasDetail([]byte(res.body), "Subject", "Shoes") {
		t.Fatalf("GET the document in the second run: %d %s", res.status, res.body)
	}
	dev.stop()
	assertPostgresStopped(t, dir)
}

// TestDevFailsClearlyWithoutPostgres: when no Postgres program can be
// found, the error says what to do.
func TestDevFailsClearlyWithoutPostgres(t *testing.T) {
	t.Parallel()
	_, err := pgBinary("no-such-postgres-program")
	if !errors.Is(err, errNoPostgres) {
		t.Fatalf("pgBinary of a missing program: %v, want errNoPostgres", err)
	}
	for _, want := range []string{"DATABASE_URL", "apt-get install postgresql", "initdb", "pg_ctl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not mention %q", err, want)
		}
	}
	// Found under the library folders, the newest version wins.
	for path, want := range map[string]int{
		"/usr/lib/postgresql/16/bin/initdb":          16,
		"/usr/lib/postgresql/9/bin/initdb":           9,
		"/usr/pgsql-13/bin/pg_ctl":                   13,
		"/opt/homebrew/opt/postgresql@17/bin/pg_ctl": 17,
		"/usr/local/opt/postgresql@14/bin/initdb":    14,
		"/usr/local/pgsql/bin/initdb":                0,
	} {
		if got := versionOf(path); got != want {
			t.Errorf("versionOf(%s) = %d, want %d", path, got, want)
		}
	}
}

// devOriginalCalls is what the demo page's example visitor makes the
// snippet call on liveagent, under the example settings.
var devOriginalCalls = mappingtest.OriginalLiveAgentCalls("Order 42 is late")

// devMessagingLog is what the stand-in bootstrap.js records for the example
// visitor: the page's init, the ready event, the snippet's document
// request answered (the page logs it), the hidden fields (by each mapping's
// messagingField) and visible fields (not editable: visibleFieldsEditable is
// false), launchChat from the page's onApplied, and the conversation start
// and its opening in this tab.
const devMessagingLog = `[
	["init", "00D3D000000DIdG", "Prechat_Messaging", "https://example.my.site.com/ESWPrechatMessaging1",
		{"scrt2URL": "https://example.my.salesforce-scrt.com"}],
	["onEmbeddedMessagingReady"],
	["document", 200],
	["setHiddenPrechatFields", {"Email": "ada@example.com", "Case_Status": "New", "Account_Website": "acme.test", "Account_Revenue": "100"}],
	["setVisiblePrechatFields", {
		"_email": {"value": "ada@example.com", "isEditableByEndUser": false},
		"_firstName": {"value": "Ada", "isEditableByEndUser": false},
		"_lastName": {"value": "Lovelace", "isEditableByEndUser": false},
		"_subject": {"value": "Order 42 is late", "isEditableByEndUser": false}}],
	["launchChat"],
	["onEmbeddedMessagingConversationStarted"],
	["onEmbeddedMessagingConversationOpened"]
]`

// devDemoProduct is the demo page run for one chat product.
type devDemoProduct struct {
	// product is the ?product= value; screenshot the file under docs/
	// (none when empty).
	product, screenshot string
	// unverified unchecks "Verified by the site's server" before the chat
	// starts.
	unverified bool
	// loaded is true once the product's script is in the page, done once
	// the agent view shows what the product received.
	loaded, done string
	// empty is in the agent view before the chat starts.
	empty string
	// check asserts what the product received and what the page shows;
	// after, if set, runs once the screenshot is taken.
	check func(t *testing.T, b *browsertest.Browser)
	after func(t *testing.T, b *browsertest.Browser)
}

// TestDevDemoPageInBrowser drives the demo page of processor dev in headless
// Chromium, once per chat product, against one processor dev: the form goes
// through analytics-next to the ingest, the snippet hands the visitor's
// document to the product's stand-in, and the agent view shows what the
// product received; the compare panel shows the document's three
// renderings. With PRECHAT_UPDATE_SCREENSHOT=1 it writes the screenshots to
// docs/demo-page.png (Legacy Chat), docs/demo-page-embedded-chat.png and
// docs/demo-page-messaging.png.
func TestDevDemoPageInBrowser(t *testing.T) {
	t.Parallel()
	browsertest.Require(t)
	dev := startDev(t, []string{"DATABASE_URL=" + persistencetest.NewDatabase(t)}, "--data-dir", t.TempDir(), "--kafka-port", "0")
	liveAgent := devDemoProduct{
		product: "liveAgent", screenshot: "demo-page.png",
		loaded: `typeof window.liveagent === 'object'`,
		done:   `!!document.querySelector('#init-call .chat-url')`,
		empty:  "No liveagent calls yet",
		check:  checkDemoLiveAgent,
		after:  checkDemoNewVisitor,
	}
	embeddedChat := devDemoProduct{
		product: "embeddedChat", screenshot: "demo-page-embedded-chat.png",
		loaded: `typeof window.embedded_svc === 'object'`,
		done:   `!!document.querySelector('#esw-init[data-inits]')`,
		empty:  "Nothing on embedded_svc yet",
		check:  checkDemoEmbeddedChat,
	}
	messaging := devDemoProduct{
		product: "messaging", screenshot: "demo-page-messaging.png",
		// Before the chat, the timeline shows init and the ready
		// event done, the other six steps pending.
		loaded: `(window.__messagingLog || []).length === 2 && document.querySelectorAll('#messaging-timeline li.done').length === 2 &&
			document.querySelectorAll('#messaging-timeline li.pending').length === 6`,
		done:  `document.querySelectorAll('#messaging-timeline li.done').length === 8`,
		empty: "Set after onEmbeddedMessagingReady, once the document arrived",
		check: checkDemoMessaging,
		after: checkDemoMessagingLifecycle,
	}
	// The same visitor with "Verified by the site's server" unchecked: the
	// same values, each marked "this browser".
	unverified := func(p devDemoProduct) devDemoProduct {
		p.unverified, p.screenshot, p.after = true, "", nil
		return p
	}
	t.Run("product", func(t *testing.T) {
		for _, p := range []devDemoProduct{liveAgent, embeddedChat, messaging, unverified(liveAgent), unverified(messaging)} {
			name := p.product
			if p.unverified {
				name += "-unverified"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runDemoPage(t, dev, p)
			})
		}
	})
	dev.stop()
}

// runDemoPage opens the page of the product, starts a chat as the example
// visitor, checks what every product shares, runs p.check and takes the
// screenshot.
func runDemoPage(t *testing.T, dev *devProcess, p devDemoProduct) {
	b := browsertest.New(t, browsertest.Options{Width: 1280, Height: 900, Debug: []string{
		`document.getElementById('status').innerText`, `window.__liveagentCalls`, `window.__eswLog`, `window.__messagingLog`,
	}})
	ready := `!!window.prechat && prechat.product === '` + p.product + `' && (` + p.loaded + `) &&
		document.body.getAttribute('data-state') === 'idle' && /^Ready/.test(document.getElementById('status-text').textContent)`

	// Legacy Chat is the default; Embedded Service Chat is reached through
	// the switch, which reloads the page with the product in the URL;
	// Messaging for Web is opened by its URL.
	since := 0
	switch p.product {
	case "liveAgent":
		b.Do(30*time.Second, chromedp.Navigate(dev.base+"/"))
	case "embeddedChat":
		b.Do(30*time.Second, chromedp.Navigate(dev.base+"/"))
		b.Poll(20*time.Second, `!!window.prechat && document.querySelector('#product-switch [aria-current]').getAttribute('data-product') === 'liveAgent'`)
		since = len(b.Requests())
		b.Do(10*time.Second, chromedp.Click(chromedp.CSS(`#product-switch a[data-product="embeddedChat"]`)))
		b.PollAcrossLoads(20*time.Second, `location.search === '?product=embeddedChat' && !!window.prechat`)
	default:
		b.Do(30*time.Second, chromedp.Navigate(dev.base+"/?product="+p.product))
	}
	b.Poll(20*time.Second, ready)
	if cur := browsertest.Eval[string](b, `document.querySelector('#product-switch [aria-current]').getAttribute('data-product')`); cur != p.product {
		t.Errorf("the switch marks %q as the current product, want %q", cur, p.product)
	}
	if got := b.Text("#agent-view"); !strings.Contains(got, p.empty) {
		t.Errorf("the agent view before the chat lacks %q:\n%s", p.empty, got)
	}

	for id, value := range map[string]string{
		"name": "Ada Lovelace", "email": "ada@example.com", "company": "Acme", "website": "acme.test",
		"revenue": "100", "subject": "Order 42 is late",
	} {
		b.Do(10*time.Second, chromedp.SendKeys(chromedp.ID(id), value))
	}
	b.Do(10*time.Second, chromedp.SetValue(chromedp.ID("caseStatus"), "New"))
	if !browsertest.Eval[bool](b, `document.getElementById('verified').checked`) {
		t.Error(`"Verified by the site's server" is not checked by default`)
	}
	if p.unverified {
		b.Do(10*time.Second, chromedp.Click(chromedp.ID("verified")))
	}
	b.Do(10*time.Second, chromedp.Click(chromedp.ID("start")))
	b.Poll(30*time.Second, `document.body.getAttribute('data-state') === 'applied' && (`+p.done+`)`)

	p.check(t, b)
	checkDemoOrigins(t, b, dev, !p.unverified)

	anon := browsertest.Eval[string](b, `prechat.anonymousId()`)
	if shown := b.Text("#anonymous-id"); anon == "" || shown != anon {
		t.Errorf("the page shows the anonymousId %q, the visitor's is %q", shown, anon)
	}
	if doc := browsertest.Eval[string](b, `JSON.parse(document.getElementById('document-json').textContent).anonymousId`); doc != anon {
		t.Errorf("the document shown is of %q, want %q", doc, anon)
	}
	checkDemoCompare(t, b, p.product)

	// Events went to the local ingest, the product's scripts came from this
	// server, and nothing left it.
	rs := b.Requests()[since:]
	for _, path := range []string{"/v1/i", "/v1/g", "/v1/t"} {
		if browsertest.CountPosts(rs, dev.base+path) == 0 {
			t.Errorf("analytics-next did not POST %s; requests: %v", path, rs)
		}
	}
	scripts := map[string][]string{
		"liveAgent":    {"/v1/prechat.js", "/dev/deployment.js"},
		"embeddedChat": {"/dev/esw.js", "/v1/prechat.js?product=embeddedChat"},
		"messaging":    {"/v1/prechat.js?product=messaging", "/dev/bootstrap.js"},
	}
	for product, paths := range scripts {
		for _, path := range paths {
			loaded := slices.ContainsFunc(rs, func(r browsertest.Request) bool { return r.URL == dev.base+path })
			if want := product == p.product; loaded != want {
				t.Errorf("%s loaded: %t, want %t; requests: %v", path, loaded, want, rs)
			}
		}
	}
	b.AssertLocal(dev.base)
	b.AssertNoExceptions()

	if p.screenshot == "" {
		return
	}
	shot := b.Screenshot()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if w := img.Bounds().Dx(); w != 1280 {
		t.Errorf("screenshot %d pixels wide, want 1280", w)
	}
	out := filepath.Join(t.TempDir(), p.screenshot)
	if os.Getenv("PRECHAT_UPDATE_SCREENSHOT") == "1" {
		out = filepath.Join("..", "..", "docs", p.screenshot)
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%dx%d)", out, img.Bounds().Dx(), img.Bounds().Dy())
	if p.after != nil {
		p.after(t, b)
	}
}

// checkDemoOrigins: with "Verified by the site's server" checked, the page
// asked the stand-in for the site's server for the userHash and sent it
// with identify and group, so the document's userId link is verified and
// the agent view marks every Contact and Account detail "verified user";
// unchecked, nothing is verified and every such detail is "this browser".
// The link's state shows beside the visitor's name, the badges also in the
// compare panel.
func checkDemoOrigins(t *testing.T, b *browsertest.Browser, dev *devProcess, verified bool) {
	t.Helper()
	doc := browsertest.Eval[map[string]any](b, `JSON.parse(document.getElementById('document-json').textContent)`)
	if got, _ := doc["userVerified"].(bool); got != verified || doc["userId"] != "user-ada-example-com" {
		t.Errorf("the document's userId %v, userVerified %v; want user-ada-example-com, verified %t", doc["userId"], doc["userVerified"], verified)
	}
	origin, badge, link := "browser", "this browser", "unverified claim"
	if verified {
		origin, badge, link = "verified", "verified user", "verified link"
	}
	// Every Contact and Account detail of the agent view, and none other,
	// has one badge per place it shows; Messaging shows the email twice
	// (hidden and visible field).
	badges := browsertest.Eval[[]string](b, `Array.prototype.map.call(document.querySelectorAll('#agent-view [data-origin]'), function (o) {
		return o.getAttribute('data-entity') + ' · ' + o.getAttribute('data-label') + ': ' + o.getAttribute('data-origin') + ' ' + o.textContent; })`)
	want := map[string]bool{}
	for _, d := range []string{"Contact · User Email", "Contact · First Name", "Contact · Last Name", "Account · Account Website", "Account · Account Revenue"} {
		want[d+": "+origin+" "+badge] = true
	}
	seen := map[string]bool{}
	for _, got := range badges {
		if !want[got] {
			t.Errorf("the agent view has the badge %q; want only %s %q badges on Contact and Account details", got, origin, badge)
		}
		seen[got] = true
	}
	if len(seen) != len(want) {
		t.Errorf("the agent view's badges %q, want one for each of %v", badges, want)
	}
	if got := browsertest.Eval[int](b, `document.querySelectorAll('#compare-table [data-origin="`+origin+`"]').length`); got != len(want) {
		t.Errorf("the compare panel has %d %q badges, want %d", got, badge, len(want))
	}
	if got := b.Text("#agent-identity"); !strings.Contains(got, "user-ada-example-com") || !strings.Contains(got, link) {
		t.Errorf("the agent view's identity line %q, want the userId and %q", got, link)
	}
	// Each badge is its own detail's: the same view of the document with
	// First Name's verified flag flipped marks First Name, and it alone, the
	// other way.
	flipped := browsertest.Eval[[]string](b, `(function () {
		var doc = JSON.parse(document.getElementById('document-json').textContent);
		doc.details.forEach(function (d) { if (d.label === 'First Name') d.verified = !d.verified; });
		var view = document.createElement('div');
		view.appendChild(PrechatViews.el('div', null, PrechatViews[document.documentElement.getAttribute('data-product')](doc).body));
		return Array.prototype.map.call(view.querySelectorAll('[data-origin]'), function (o) {
			return o.getAttribute('data-label') + ': ' + o.getAttribute('data-origin'); });
	})()`)
	other := map[string]string{"verified": "browser", "browser": "verified"}[origin]
	for _, got := range flipped {
		label, o, _ := strings.Cut(got, ": ")
		if want := map[bool]string{true: other, false: origin}[label == "First Name"]; o != want {
			t.Errorf("with First Name's verified flag flipped, the view marks %s %q, want %q (all: %q)", label, o, want, flipped)
		}
	}
	if !slices.Contains(flipped, "First Name: "+other) {
		t.Errorf("with First Name's verified flag flipped, the view's badges are %q", flipped)
	}
	// The page asked for the userHash only when verified, and shows which
	// events carried it.
	asked := slices.ContainsFunc(b.Requests(), func(r browsertest.Request) bool {
		return r.URL == dev.base+"/dev/user-hash?userId=user-ada-example-com"
	})
	if asked != verified {
		t.Errorf("GET /dev/user-hash requested: %t, want %t", asked, verified)
	}
	proofs := browsertest.Eval[[]string](b, `Array.prototype.map.call(document.querySelectorAll('#events li'), function (li) {
		return li.querySelector('b').textContent + (li.querySelector('.proof') ? ' + userHash' : ''); })`)
	wantProofs := []string{"identify", "group", "track “Live Chat Conversation Started”"}
	if verified {
		wantProofs = []string{"identify + userHash", "group + userHash", "track “Live Chat Conversation Started”"}
	}
	if !slices.Equal(proofs, wantProofs) {
		t.Errorf("the events sent: %q, want %q", proofs, wantProofs)
	}
}

// checkDemoLiveAgent: the snippet made exactly the original integration's
// liveagent calls, which the agent view shows; "New visitor" starts over.
func checkDemoLiveAgent(t *testing.T, b *browsertest.Browser) {
	browsertest.AssertJSON(t, "liveagent calls", b.Eval(`window.__liveagentCalls`), devOriginalCalls)
	view := b.Text("#agent-view")
	for _, want := range []string{
		"Ada Lovelace", "User Email", "ada@example.com", "Contact", "Case", "Account",
		"Order 42 is late", "acme.test", "Contact.Email", "Account.AnnualRevenue", "liveagent.init",
		"https://d.la3-c1cs-phx.salesforceliveagent.com/chat", "5723D00000000F4", "00D3D000000DIdG",
	} {
		if !strings.Contains(view, want) {
			t.Errorf("the agent view lacks %q:\n%s", want, view)
		}
	}
	if got := b.Text("#status-text"); !strings.HasPrefix(got, "Applied: 7 details replayed, then liveagent.init (19 calls)") {
		t.Errorf("status %q", got)
	}

	// The collapsible raw list is the recorded calls.
	b.Do(10*time.Second, chromedp.Click(chromedp.CSS("#raw-calls summary")))
	browsertest.AssertJSON(t, "the raw calls shown", []byte(b.Text("#calls-json")), devOriginalCalls)
	b.Do(10*time.Second, chromedp.Click(chromedp.CSS("#raw-calls summary")))
}

// checkDemoNewVisitor: "New visitor" starts over on a page of the same
// product, with another anonymousId and no liveagent calls.
func checkDemoNewVisitor(t *testing.T, b *browsertest.Browser) {
	anon := browsertest.Eval[string](b, `prechat.anonymousId()`)
	b.Do(10*time.Second, chromedp.Click(chromedp.ID("reset")))
	b.PollAcrossLoads(20*time.Second, `!!window.prechat && (window.__liveagentCalls || [1]).length === 0 &&
		/^Ready/.test(document.getElementById('status-text').textContent) &&
		document.getElementById('anonymous-id').textContent !== `+strconv.Quote(anon))
	if got := b.Text("#agent-view"); !strings.Contains(got, "No liveagent calls yet") {
		t.Errorf("the agent view of a new visitor:\n%s", got)
	}
	b.AssertNoExceptions()
}

// checkDemoEmbeddedChat: the snippet set the document on
// embedded_svc.settings and called embedded_svc.init once; the agent view
// shows the form details, the records with their field maps and options,
// the prepopulated fields and the init call.
func checkDemoEmbeddedChat(t *testing.T, b *browsertest.Browser) {
	// embedded_svc.init was called once, with the document's arguments and
	// with its settings on embedded_svc.settings after the page's own
	// (api/browser_test.go and mapping's tests prove those renderings
	// exact); then onApplied opened the chat window.
	browsertest.AssertJSON(t, "embedded_svc calls", b.Eval(`window.__eswLog`), string(b.Eval(`(function () {
		var ec = JSON.parse(document.getElementById('document-json').textContent).embeddedChat, i = ec.init, st = ec.settings;
		return [['init', [i.coreUrl, i.siteUrl, i.gslbUrl, i.orgId, i.deploymentName, i.options], {displayHelpButton: false, language: 'en-US',
			extraPrechatFormDetails: st.extraPrechatFormDetails, extraPrechatInfo: st.extraPrechatInfo, prepopulatedPrechatFields: st.prepopulatedPrechatFields}],
			['bootstrapEmbeddedService']];
	})()`)))
	if n := browsertest.Eval[int](b, `__eswLog.filter(function (c) { return c[0] === 'init'; }).length`); n != 1 {
		t.Errorf("embedded_svc.init called %d times, want once", n)
	}
	// The example settings' values, as text.
	for expr, want := range map[string]string{
		`__eswLog[0][1].slice(0, 5)`: `["https://example.my.salesforce.com", "https://example.my.site.com/support", "https://service.force.com", "00D3D000000DIdG", "Prechat_Chat"]`,
		`[__eswLog[0][1][5].deploymentId, __eswLog[0][1][5].buttonId, __eswLog[0][1][5].eswLiveAgentDevName]`: `["5723D00000000F4", "5733D00000000Ab", "EmbeddedServiceLiveAgent_Parent04I3D000000001"]`,
		`__eswLog[0][2].extraPrechatFormDetails[0]`:                                                           `{"label": "User Email", "value": "ada@example.com", "displayToAgent": true, "transcriptFields": []}`,
		`__eswLog[0][2].extraPrechatFormDetails[6]`:                                                           `{"label": "Account Revenue", "value": "100", "displayToAgent": true, "transcriptFields": []}`,
		`__eswLog[0][2].extraPrechatInfo.map(function (e) { return e.entityName + ':' + e.entityFieldMaps.map(function (m) { return m.fieldName; }); })`: `["Contact:Email,FirstName,LastName", "Case:Status,Subject", "Account:Website,AnnualRevenue"]`,
		`__eswLog[0][2].extraPrechatInfo[0].entityFieldMaps[0]`: `{"fieldName": "Email", "label": "User Email", "doFind": true, "isExactMatch": true, "doCreate": true}`,
		`__eswLog[0][2].prepopulatedPrechatFields`:              `{"Email": "ada@example.com", "FirstName": "Ada", "LastName": "Lovelace", "Subject": "Order 42 is late"}`,
	} {
		browsertest.AssertJSON(t, expr, b.Eval(expr), want)
	}
	if n := browsertest.Eval[string](b, `document.getElementById('esw-init').getAttribute('data-inits')`); n != "1" {
		t.Errorf("the agent view shows %s init calls, want 1", n)
	}
	rows := browsertest.Eval[[]string](b, `Array.prototype.map.call(document.querySelectorAll('#esw-form-details tbody tr'), function (r) { return r.getAttribute('data-label'); })`)
	if want := []string{"User Email", "First Name", "Last Name", "Case Status", "Subject", "Account Website", "Account Revenue"}; !slices.Equal(rows, want) {
		t.Errorf("the form details shown: %q, want %q", rows, want)
	}
	for sel, wants := range map[string][]string{
		`#esw-form-details tr[data-label="User Email"]`: {"User Email", "ada@example.com", "✓", "none"},
		`#esw-entities [data-entity="Contact"]`:         {"Contact", "showOnCreate", "saveToTranscript", "User Email", "ada@example.com", "Contact.Email", "Contact.LastName"},
		`#esw-entities [data-entity="Account"]`:         {"Account.Website", "Account.AnnualRevenue"},
		`#esw-prepopulated`:                             {"prepopulatedPrechatFields", "FirstName", "Ada", "Email", "ada@example.com", "Subject", "Order 42 is late"},
		`#esw-init`: {"embedded_svc.init", "called once by the snippet", "https://example.my.salesforce.com", "https://example.my.site.com/support",
			"https://service.force.com", "00D3D000000DIdG", "Prechat_Chat", "5733D00000000Ab", "EmbeddedServiceLiveAgent_Parent04I3D000000001",
			`displayHelpButton: false`, "bootstrapEmbeddedService()"},
		`#agent-name`: {"Ada Lovelace"},
	} {
		got := b.Text(sel)
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Errorf("%s lacks %q:\n%s", sel, want, got)
			}
		}
	}
	if got := b.Text("#status-text"); got != "Applied: 7 form details and 3 records set, then embedded_svc.init" {
		t.Errorf("status %q", got)
	}
	if n := browsertest.Eval[int](b, `window.__liveagentCalls === undefined ? 0 : 1`); n != 0 {
		t.Error("the Embedded Service Chat page has liveagent calls")
	}
}

// checkDemoMessaging: the snippet set the hidden and visible fields after
// the ready event and before the conversation started; the agent view
// shows the timeline and both field lists.
func checkDemoMessaging(t *testing.T, b *browsertest.Browser) {
	browsertest.AssertJSON(t, "Messaging for Web calls and events", b.Eval(`window.__messagingLog`), devMessagingLog)
	browsertest.AssertJSON(t, "prechatAPI calls before ready or after the start", b.Eval(`window.__messagingViolations`), `[]`)
	at := func(name string) int {
		return browsertest.Eval[int](b, `__messagingLog.map(function (c) { return c[0]; }).indexOf(`+strconv.Quote(name)+`)`)
	}
	ready, hidden, started := at("onEmbeddedMessagingReady"), at("setHiddenPrechatFields"), at("onEmbeddedMessagingConversationStarted")
	if !(ready >= 0 && ready < hidden && hidden < started) {
		t.Errorf("ready at %d, hidden fields at %d, conversation started at %d: want them in this order", ready, hidden, started)
	}
	if email := browsertest.Eval[string](b, `__messagingLog[`+strconv.Itoa(hidden)+`][1].Email`); email != "ada@example.com" {
		t.Errorf("hidden field Email = %q, want ada@example.com", email)
	}

	steps := browsertest.Eval[[]string](b, `Array.prototype.map.call(document.querySelectorAll('#messaging-timeline li'), function (li) {
		return li.getAttribute('data-step') + ' ' + li.className; })`)
	want := []string{"init done", "onEmbeddedMessagingReady done", "document done", "setHiddenPrechatFields done", "setVisiblePrechatFields done",
		"launchChat done", "onEmbeddedMessagingConversationStarted done", "onEmbeddedMessagingConversationOpened done"}
	if !slices.Equal(steps, want) {
		t.Errorf("the timeline shows %q, want %q", steps, want)
	}
	// The rows' text without the origin badges (checkDemoOrigins).
	fields := func(table string) []string {
		return browsertest.Eval[[]string](b, `Array.prototype.map.call(document.querySelectorAll('`+table+` tbody tr'), function (r) {
			return Array.prototype.map.call(r.cells, function (c) {
				c = c.cloneNode(true);
				c.querySelectorAll('.origin').forEach(function (o) { o.remove(); });
				return c.textContent;
			}).join(' ').replace(/\s+/g, ' ').trim(); })`)
	}
	if got, want := fields("#messaging-hidden"), []string{
		"Email ada@example.com Contact · User Email", "Case_Status New Case · Case Status",
		"Account_Website acme.test Account · Account Website", "Account_Revenue 100 Account · Account Revenue",
	}; !slices.Equal(got, want) {
		t.Errorf("the hidden fields shown: %q, want %q", got, want)
	}
	if got, want := fields("#messaging-visible"), []string{
		"_email ada@example.com – no", "_firstName Ada – no", "_lastName Lovelace – no", "_subject Order 42 is late – no",
	}; !slices.Equal(got, want) {
		t.Errorf("the visible fields shown: %q, want %q", got, want)
	}
	for _, want := range []string{"Ada Lovelace", "embeddedservice_bootstrap.init", "Prechat_Messaging", "https://example.my.salesforce-scrt.com"} {
		if got := b.Text("#agent-view"); !strings.Contains(got, want) {
			t.Errorf("the agent view lacks %q:\n%s", want, got)
		}
	}
	if got := b.Text("#status-text"); got != "Applied: 4 hidden and 4 visible pre-chat fields set, then launchChat" {
		t.Errorf("status %q", got)
	}
}

// checkDemoMessagingLifecycle runs the demo page's Messaging buttons once
// the first conversation runs. "Second conversation" ends it (the stand-in
// fires ...ConversationClosed, then the ready event again) and starts chat
// again with the form, whose case subject changed: the snippet sets the
// fields again from the new document, before the second conversation
// starts. "Reopen on another page" loads the page again while that
// conversation runs: Messaging reopens it there, and a chat start on that
// page makes the snippet fetch the document and set nothing, with no error.
// The note under the buttons, and the status, say what happened.
func checkDemoMessagingLifecycle(t *testing.T, b *browsertest.Browser) {
	if hidden := browsertest.Eval[bool](b, `document.getElementById('messaging-lifecycle').hidden`); hidden {
		t.Fatal("the conversation runs, but its buttons are hidden")
	}
	b.Do(10*time.Second, chromedp.SetValue(chromedp.ID("subject"), "Refund, please"))
	b.Do(10*time.Second, chromedp.Click(chromedp.ID("second")))
	b.Poll(30*time.Second, `/^Conversation 2, applied/.test(document.getElementById('status-text').textContent) &&
		__messagingLog.filter(function (c) { return c[0] === 'onEmbeddedMessagingConversationOpened'; }).length === 2`)
	browsertest.AssertJSON(t, "the second conversation's calls and events", b.Eval(`__messagingLog.slice(8)`), `[
		["onEmbeddedMessagingConversationClosed"], ["onEmbeddedMessagingReady"], ["document", 200],
		["setHiddenPrechatFields", {"Email": "ada@example.com", "Case_Status": "New", "Account_Website": "acme.test", "Account_Revenue": "100"}],
		["setVisiblePrechatFields", {
			"_email": {"value": "ada@example.com", "isEditableByEndUser": false},
			"_firstName": {"value": "Ada", "isEditableByEndUser": false},
			"_lastName": {"value": "Lovelace", "isEditableByEndUser": false},
			"_subject": {"value": "Refund, please", "isEditableByEndUser": false}}],
		["launchChat"], ["onEmbeddedMessagingConversationStarted"], ["onEmbeddedMessagingConversationOpened"]]`)
	if got := b.Text("#lifecycle-note"); !strings.Contains(got, "fired onEmbeddedMessagingReady again") {
		t.Errorf("the note after the second conversation: %q", got)
	}
	if got := b.Text("#status-text"); got != "Conversation 2, applied: 4 hidden and 4 visible pre-chat fields set, then launchChat" {
		t.Errorf("status %q", got)
	}
	// The agent view shows the second conversation's fields.
	if got := b.Text(`#messaging-visible tr[data-field="_subject"]`); !strings.Contains(got, "Refund, please") {
		t.Errorf("the visible _subject shown: %q", got)
	}

	b.Do(10*time.Second, chromedp.Click(chromedp.ID("reopen")))
	b.PollAcrossLoads(20*time.Second, `location.search === '?product=messaging&page=another' && !!window.prechat &&
		(window.__messagingLog || []).some(function (c) { return c[0] === 'onEmbeddedMessagingConversationOpened'; }) &&
		/opened from another page/.test(document.getElementById('status-text').textContent)`)
	if browsertest.Eval[bool](b, `document.getElementById('page-note').hidden`) {
		t.Error("the other page does not say what it is")
	}
	steps := browsertest.Eval[[]string](b, `Array.prototype.map.call(document.querySelectorAll('#messaging-timeline li'), function (li) {
		return li.getAttribute('data-step') + ' ' + li.className; })`)
	if want := []string{"init done", "onEmbeddedMessagingReady done", "onEmbeddedMessagingConversationOpened done"}; !slices.Equal(steps, want) {
		t.Errorf("the other page's timeline shows %q, want %q", steps, want)
	}
	b.Poll(10*time.Second, `!!prechat.anonymousId()`)
	b.Do(10*time.Second, chromedp.Click(chromedp.ID("fill")))
	b.Do(10*time.Second, chromedp.Click(chromedp.ID("start")))
	b.Poll(30*time.Second, `/^Nothing set/.test(document.getElementById('status-text').textContent)`)
	browsertest.AssertJSON(t, "the other page's calls and events", b.Eval(`window.__messagingLog`), `[
		["init", "00D3D000000DIdG", "Prechat_Messaging", "https://example.my.site.com/ESWPrechatMessaging1",
			{"scrt2URL": "https://example.my.salesforce-scrt.com"}],
		["onEmbeddedMessagingReady"], ["onEmbeddedMessagingConversationOpened"], ["document", 200]]`)
	browsertest.AssertJSON(t, "prechatAPI calls the stand-in refused", b.Eval(`window.__messagingViolations`), `[]`)
	if got := b.Text("#lifecycle-note"); !strings.Contains(got, "The snippet set nothing, called no onError") {
		t.Errorf("the note on the other page: %q", got)
	}
	if state := browsertest.Eval[string](b, `document.body.getAttribute('data-state')`); state == "error" {
		t.Errorf("the other page shows an error: %s", b.Text("#status-text"))
	}
	b.AssertNoExceptions()
}

// checkDemoCompare: the compare panel shows the document's three
// renderings, detail by detail, with the page's product highlighted.
func checkDemoCompare(t *testing.T, b *browsertest.Browser, product string) {
	if cur := browsertest.Eval[[]string](b, `Array.prototype.map.call(document.querySelectorAll('#compare-table thead th.current'), function (th) { return th.getAttribute('data-product'); })`); !slices.Equal(cur, []string{product}) {
		t.Errorf("the compare panel highlights %q, want %q", cur, product)
	}
	// Cells are compared with their white space collapsed.
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	cell := func(label, product string) string {
		return norm(b.Text(`#compare-table tr[data-label="` + label + `"] td[data-product="` + product + `"]`))
	}
	for _, c := range []struct{ label, product, want string }{
		{"Account Revenue", "liveAgent", "100 map Account.AnnualRevenue"},
		{"Account Revenue", "embeddedChat", `"100" map Account.AnnualRevenue`},
		{"Account Revenue", "messaging", `hidden Account_Revenue "100"`},
		{"User Email", "liveAgent", `"ada@example.com" map Contact.Email find exact create`},
		{"User Email", "embeddedChat", "form Email"},
		{"User Email", "messaging", `visible _email "ada@example.com" read-only`},
		{"First Name", "messaging", `visible _firstName "Ada" read-only`},
		{"Subject", "messaging", `visible _subject "Order 42 is late"`},
	} {
		if got := cell(c.label, c.product); !strings.Contains(got, c.want) {
			t.Errorf("compare %s, %s: %q, want it to hold %q", c.label, c.product, got, c.want)
		}
	}
	if got := b.Text("#compare-table"); !strings.Contains(got, `embedded_svc.init("Prechat_Chat", …)`) || !strings.Contains(got, `setName("Ada Lovelace")`) {
		t.Errorf("the compare panel lacks the start rows:\n%s", got)
	}
}

// devProcess is "processor dev" running as a child process: the test
// binary runs main() (see TestMain).
type devProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	exited chan struct{}
	err    error
	// base is the public URL, from the "http listening" log line.
	base string
}

// startDev starts processor dev with the given extra environment, without
// the DATABASE_URL of the test environment unless env sets one, on free
// ports, and waits until it serves HTTP.
func startDev(t *testing.T, env []string, args ...string) *devProcess {
	t.Helper()
	var environ []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DATABASE_URL", "PRECHAT_DEV_DIR", "SETTINGS_FILE", "KAFKA_BROKERS", "KAFKA_TOPIC", "KAFKA_GROUP", "ROLES",
			"WRITE_KEYS", "LOG_FORMAT", "LOG_LEVEL", "DEPLOYMENT_SCRIPT_URL", "ALLOWED_ORIGINS", "IDENTITY_SECRET", "SERVER_WRITE_KEYS":
			continue
		}
		environ = append(environ, kv)
	}
	environ = append(environ, "PRECHAT_TEST_RUN_MAIN=1", "HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0")
	p := &devProcess{t: t, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"dev"}, args...)...)
	p.cmd.Env = append(environ, env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	// A test that fails midway still stops the child, and so its Postgres.
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-p.exited:
			case <-time.After(20 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
	})

	listening := regexp.MustCompile(`http listening\s+\{.*?"addr": ?"([^"]+)"`)
	deadline := time.Now().Add(90 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			p.base = "http://" + m[1]
			return p
		}
		if !p.running() {
			t.Fatalf("processor dev exited (%v) before serving HTTP; stdout:\n%s\nlog:\n%s", p.err, p.stdout.String(), p.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("processor dev does not serve HTTP after 90s; stdout:\n%s\nlog:\n%s", p.stdout.String(), p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *devProcess) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGINT (Ctrl-C) and expects a clean exit within 20 seconds.
func (p *devProcess) stop() {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			p.t.Fatalf("processor dev exited with %v after SIGINT; log:\n%s", p.err, p.stderr.String())
		}
		p.t.Logf("processor dev stopped %v after SIGINT", time.Since(start).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		p.t.Fatalf("processor dev did not stop within 20s of SIGINT; log:\n%s", p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "dev stopped") {
		p.t.Errorf("the log lacks the dev stopped line:\n%s", p.stderr.String())
	}
}

type devResponse struct {
	status int
	body   string
}

// request sends a request to the public port; a POST body is text/plain,
// as analytics.js sends it.
func (p *devProcess) request(method, path, body string) devResponse {
	p.t.Helper()
	return p.send(method, path, body, nil)
}

// document fetches a document with the conversation secret testSecret.
func (p *devProcess) document(path string) devResponse {
	p.t.Helper()
	return p.send(http.MethodGet, path, "", map[string]string{"X-Prechat-Token": testSecret})
}

func (p *devProcess) send(method, path, body string, header map[string]string) devResponse {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return devResponse{res.StatusCode, string(b)}
}

// assertPostgresStopped checks that no postgres server of the data folder
// runs: its postmaster.pid is gone and no process names the folder.
func assertPostgresStopped(t *testing.T, dir string) {
	t.Helper()
	data := filepath.Join(dir, "postgres", "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s/postmaster.pid is still there (%v): the private Postgres was not stopped", data, err)
	}
	// pg_ctl -w returns once the pid file is gone; the server process may
	// take a moment more to exit.
	deadline := time.Now().Add(5 * time.Second)
	for {
		running := postgresOf(t, data)
		if running == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("a postgres process of the data folder still runs 5s after stopping: %s", running)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postgresOf describes a running postgres process whose command line names
// the data folder, or returns "".
func postgresOf(t *testing.T, data string) string {
	t.Helper()
	procs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		args := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if strings.Contains(args, "postgres") && strings.Contains(args, data) {
			return fmt.Sprintf("pid %d: %s", pid, args)
		}
	}
	return ""
}

// stopOrphanPostgres shuts down the private cluster of the data folder
// when one is still running, by the pid in its postmaster.pid.
func stopOrphanPostgres(t *testing.T, dir string) {
	pidFile, err := os.ReadFile(filepath.Join(dir, "postgres", "data", "postmaster.pid"))
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(pidFile), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return
	}
	if syscall.Kill(pid, syscall.SIGQUIT) == nil {
		t.Logf("stopped the private Postgres left running (pid %d)", pid)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestDevUserHash: processor dev's stand-in for the site's server answers
// the userHash that the consumer verifies under the dev IDENTITY_SECRET,
// for that userId only; without a userId or a secret it signs nothing.
func TestDevUserHash(t *testing.T) {
	t.Parallel()
	if len(devIdentitySecret) < minIdentitySecret || !strings.Contains(devIdentitySecret, "dev-only") {
		t.Errorf("the dev IDENTITY_SECRET %q must be at least %d characters and say it is dev-only", devIdentitySecret, minIdentitySecret)
	}
	if !slices.Contains(devDefaults, "IDENTITY_SECRET="+devIdentitySecret) {
		t.Errorf("devDefaults %q lack the dev IDENTITY_SECRET", devDefaults)
	}
	pages, err := fs.Sub(devAssets, "dev")
	if err != nil {
		t.Fatal(err)
	}
	get := func(h http.Handler, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	h := devPages(pages, []byte(devIdentitySecret))
	code, body := get(h, "/dev/user-hash?userId="+url.QueryEscape("ada@example.com"))
	var got struct{ UserID, UserHash string }
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil {
		t.Fatalf("GET /dev/user-hash: %d %s (%v)", code, body, err)
	}
	v := &mapping.Verifier{Secrets: [][]byte{[]byte(devIdentitySecret)}}
	for userID, want := range map[string]mapping.ProofResult{"ada@example.com": mapping.ProofValid, "grace@example.com": mapping.ProofInvalid} {
		e := mapping.Event{UserID: userID, Prechat: mapping.PrechatContext{UserHash: got.UserHash}}
		if r := v.Verify(&e, time.Now()); r != want || got.UserID != "ada@example.com" {
			t.Errorf("the userHash of %s (%s) verifies for %s as %s, want %s", got.UserID, got.UserHash, userID, r, want)
		}
	}
	if code, body := get(h, "/dev/user-hash"); code != http.StatusBadRequest {
		t.Errorf("GET /dev/user-hash without a userId: %d %s, want 400", code, body)
	}
	if code, body := get(devPages(pages, nil), "/dev/user-hash?userId=ada"); code != http.StatusServiceUnavailable || strings.Contains(body, "userHash") {
		t.Errorf("GET /dev/user-hash without IDENTITY_SECRET: %d %s, want 503", code, body)
	}
}

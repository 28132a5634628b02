package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/prechat/prechat/mapping/mappingtest"
)

// The browser tests drive Debian's Chromium with chromedp. The page uses the
// real @segment/analytics-next, bundled from testdata/browser by
// scripts/browser-deps, which also installs Chromium.
const (
	chromiumPath = "/usr/bin/chromium"
	browserDir   = "testdata/browser"
	// standInJS is the stand-in deployment.js, served beside the API.
	standInJS = "/test/deployment.js"
)

// originalCalls is what Segment's browser integration called for the
// visitor of page.html under mappingtest's settings: identify traits email,
// firstName and lastName; group traits website and revenue; conversation
// start properties caseStatus and subject.
const originalCalls = `[
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
	["addCustomDetail", "Subject", "Shoes", true],
	["map", "Subject", "Subject", false, false, true],
	["findOrCreate", "Account"],
	["addCustomDetail", "Account Website", "acme.test", true],
	["map", "Website", "Account Website", true, true, false],
	["addCustomDetail", "Account Revenue", 100, true],
	["map", "AnnualRevenue", "Account Revenue", false, false, false],
	["init", "https://d.la3-c1cs-phx.salesforceliveagent.com/chat", "5723D00000000F4", "00D3D000000DIdG"]
]`

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
			requireBrowserDeps(t)
			s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: browserRoutes()})
			b := newBrowser(t)

			b.do(30*time.Second, chromedp.Navigate(s.url+"/test/"+page))
			b.poll(10*time.Second, `window.__ready === true`)
			b.do(10*time.Second, chromedp.Click(chromedp.ID("start")))
			b.poll(30*time.Second, `(window.__liveagentCalls || []).some(function (c) { return c[0] === 'init'; })`)
			assertJSON(t, "liveagent calls", b.eval(`window.__liveagentCalls`), originalCalls)

			// The document is the one of the visitor analytics-next identified.
			anon := evalAs[string](b, `window.__prechatApplied[0].anonymousId`)
			if want := evalAs[string](b, `prechat.anonymousId()`); anon == "" || anon != want {
				t.Errorf("applied the document of %q, want the visitor's anonymousId %q", anon, want)
			}

			// A second conversation start on the page changes nothing.
			b.do(10*time.Second, chromedp.Click(chromedp.ID("start")))
			b.waitRequests(10*time.Second, func(rs []request) bool { return countPosts(rs, s.url+"/v1/t") >= 2 })
			time.Sleep(300 * time.Millisecond)
			assertJSON(t, "liveagent calls after a second start", b.eval(`window.__liveagentCalls`), originalCalls)
			assertJSON(t, "onError calls", b.eval(`window.__prechatErrors`), `[]`)
			if n := evalAs[int](b, `window.__prechatApplied.length`); n != 1 {
				t.Errorf("onApplied ran %d times, want 1", n)
			}

			// Events went to the local ingest, and nothing left the local server.
			rs := b.requestList()
			for _, path := range []string{"/v1/i", "/v1/g", "/v1/t"} {
				if countPosts(rs, s.url+path) == 0 {
					t.Errorf("analytics-next did not POST %s; requests: %v", path, rs)
				}
			}
			b.assertLocal(s.url)
			b.assertNoExceptions()
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

	b.do(30*time.Second, chromedp.Navigate(s.url+"/test/plain.html"))
	// analytics.js 1.x wrote the cookie URL-encoded and JSON-quoted.
	got := evalAs[string](b, `document.cookie = 'ajs_anonymous_id=%22`+anon+`%22; path=/'; prechat.anonymousId()`)
	if got != anon {
		t.Errorf("prechat.anonymousId() = %q, want %q", got, anon)
	}
	doc := evalAs[map[string]any](b, `prechat.start({after: ['`+anon+`-i', '`+anon+`-g', '`+anon+`-c']})`, chromedp.EvalAwaitPromise)
	if doc["anonymousId"] != anon || doc["complete"] != true {
		t.Errorf("start() resolved to %v", doc)
	}
	assertJSON(t, "liveagent calls", b.eval(`window.__liveagentCalls`), originalCalls)

	// A second start resolves to the applied document and calls nothing.
	again := evalAs[map[string]any](b, `prechat.start({anonymousId: 'someone-else'})`, chromedp.EvalAwaitPromise)
	if again["anonymousId"] != anon {
		t.Errorf("the second start() resolved to %v", again)
	}
	assertJSON(t, "liveagent calls after a second start", b.eval(`window.__liveagentCalls`), originalCalls)
	assertJSON(t, "onError calls", b.eval(`window.__prechatErrors`), `[]`)
	b.assertLocal(s.url)
	b.assertNoExceptions()
}

// TestBrowserNoConversation: a page that never starts a conversation loads
// deployment.js and never calls liveagent, so the page keeps full use of it;
// a start without a document reports an error and calls nothing.
func TestBrowserNoConversation(t *testing.T) {
	t.Parallel()
	requireBrowserDeps(t)
	s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: browserRoutes()})
	b := newBrowser(t)

	b.do(30*time.Second, chromedp.Navigate(s.url+"/test/plain.html"))
	b.poll(10*time.Second, `typeof window.liveagent === 'object' && typeof liveagent.init === 'function'`)
	time.Sleep(time.Second)
	assertJSON(t, "liveagent calls", b.eval(`window.__liveagentCalls`), `[]`)
	assertJSON(t, "onError calls", b.eval(`window.__prechatErrors`), `[]`)

	// start resolves to null when there is no document: 404 after wait=0.
	doc := b.eval(`prechat.start({anonymousId: 'nobody', wait: 0})`, chromedp.EvalAwaitPromise)
	assertJSON(t, "start() without a document", doc, `null`)
	errs := evalAs[[]string](b, `window.__prechatErrors`)
	if len(errs) != 1 || !strings.Contains(errs[0], "no pre-chat document") {
		t.Errorf("onError got %q, want one error about the missing document", errs)
	}
	assertJSON(t, "liveagent calls after a failed start", b.eval(`window.__liveagentCalls`), `[]`)
	b.assertLocal(s.url)
	b.assertNoExceptions()
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

	b.do(30*time.Second, chromedp.Navigate(s.url+"/test/plain.html"))
	b.poll(10*time.Second, `window.__prechatErrors.length > 0`)
	errs := evalAs[[]string](b, `window.__prechatErrors`)
	if len(errs) != 1 || !strings.Contains(errs[0], "could not load /test/missing/deployment.js") {
		t.Errorf("onError got %q, want one error about deployment.js", errs)
	}
	if typ := evalAs[string](b, `typeof window.liveagent`); typ != "undefined" {
		t.Errorf("typeof liveagent = %q", typ)
	}

	doc := b.eval(`prechat.start({anonymousId: '`+anon+`', after: ['`+anon+`-c'], wait: 10})`, chromedp.EvalAwaitPromise)
	assertJSON(t, "start() without liveagent", doc, `null`)
	errs = evalAs[[]string](b, `window.__prechatErrors`)
	if len(errs) != 2 || !strings.Contains(errs[1], "no liveagent") {
		t.Errorf("onError got %q, want a second error about liveagent", errs)
	}
	b.assertLocal(s.url)
	b.assertNoExceptions()
}

// TestBrowserSnippetSize checks the served snippet: the deployment.js URL
// filled in, and under 5 KB.
func TestBrowserSnippetSize(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{noConsumer: true})
	res := s.do("GET", "/v1/prechat.js", "", nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/prechat.js: %d %s", res.status, res.body)
	}
	url, err := json.Marshal(mappingtest.Settings().ScriptURL())
	if err != nil {
		t.Fatal(err)
	}
	body := string(res.body)
	if !strings.Contains(body, "var scriptUrl=cfg.scriptUrl||"+string(url)+";") {
		t.Errorf("the snippet does not load %s:\n%s", url, body)
	}
	if strings.Contains(body, "__DEPLOYMENT_SCRIPT_URL__") {
		t.Error("the snippet still holds the placeholder")
	}
	if len(body) >= 5*1024 {
		t.Errorf("the snippet is %d bytes, want under 5 KB", len(body))
	}
	t.Logf("rendered snippet: %d bytes", len(body))
}

// requireBrowserDeps fails the test when Chromium or the analytics-next
// bundle is missing.
func requireBrowserDeps(t *testing.T) {
	t.Helper()
	for _, path := range []string{chromiumPath, filepath.Join(browserDir, "build", "analytics.js")} {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%v: run scripts/browser-deps (as root) to install Chromium and build the analytics-next bundle", err)
		}
	}
}

// browserRoutes serves the test pages and scripts under /test/, on the
// API's origin.
func browserRoutes() map[string]http.Handler {
	file := func(name string) http.Handler {
		path := filepath.Join(browserDir, name)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			http.ServeFile(w, r, path)
		})
	}
	return map[string]http.Handler{
		"GET /test/page.html":    file("page.html"),
		"GET /test/plain.html":   file("plain.html"),
		"GET /test/late.html":    file("late.html"),
		"GET /test/analytics.js": file("build/analytics.js"),
		"GET " + standInJS:       file("deployment.js"),
	}
}

// browser is one headless Chromium with one tab, and what the tab did.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []request
	console  []chromedp.ConsoleMessage
}

// request is a request the page sent.
type request struct{ method, url string }

func (r request) String() string { return r.method + " " + r.url }

// newBrowser starts Chromium with a fresh profile for the test; everything
// stops when the test ends, or after two minutes.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	// Registered after TempDir, so Chromium has exited when it is removed.
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	b := &browser{t: t}
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	b.ctx = bctx
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			b.mu.Lock()
			defer b.mu.Unlock()
			for _, m := range b.console {
				t.Logf("console %s", m)
			}
			for _, r := range b.requests {
				t.Logf("request %s", r)
			}
		}
	})
	return b
}

// listen records the page's requests. It runs on chromedp's reader.
func (b *browser) listen(ev any) {
	if ev, ok := ev.(*network.EventRequestWillBeSent); ok && ev.Request != nil {
		b.mu.Lock()
		b.requests = append(b.requests, request{ev.Request.Method, ev.Request.URL})
		b.mu.Unlock()
	}
}

func (b *browser) requestList() []request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// do runs the action within timeout, failing the test on an error.
func (b *browser) do(timeout time.Duration, action chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, action); err != nil {
		b.t.Fatal(err)
	}
}

// poll waits until the expression is truthy.
func (b *browser) poll(timeout time.Duration, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\nliveagent calls: %s\nprechat errors: %s\nrequests: %v",
			expr, err, b.eval(`window.__liveagentCalls`), b.eval(`window.__prechatErrors`), b.requestList())
	}
}

// eval returns the expression's value as JSON.
func (b *browser) eval(expr string, opts ...chromedp.EvaluateOption) []byte {
	b.t.Helper()
	return evalAs[[]byte](b, expr, opts...)
}

func evalAs[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitRequests waits until the requests the page sent satisfy ok.
func (b *browser) waitRequests(timeout time.Duration, ok func([]request) bool) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok(b.requestList()) {
		if time.Now().After(deadline) {
			b.t.Fatalf("the page did not send the expected requests: %v", b.requestList())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertLocal checks that every request went to the test server.
func (b *browser) assertLocal(origin string) {
	b.t.Helper()
	rs := b.requestList()
	if len(rs) == 0 {
		b.t.Error("no request recorded")
	}
	for _, r := range rs {
		if !strings.HasPrefix(r.url, origin+"/") && !strings.HasPrefix(r.url, "data:") {
			b.t.Errorf("request to outside the test server: %s", r)
		}
	}
}

// assertNoExceptions checks that nothing threw uncaught on the page.
func (b *browser) assertNoExceptions() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if m.IsException() {
			b.t.Errorf("the page threw: %s", m.Text)
		}
	}
}

func countPosts(rs []request, url string) int {
	n := 0
	for _, r := range rs {
		if r.method == http.MethodPost && r.url == url {
			n++
		}
	}
	return n
}

// assertJSON compares JSON values.
func assertJSON(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: %v in the expected %s", what, err, want)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", "  ")
		wi, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("%s:\ngot  %s\nwant %s", what, gi, wi)
	}
}

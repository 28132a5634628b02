// Package browsertest drives Debian's Chromium with chromedp for the
// project's browser tests (api/browser_test.go, cmd/processor/dev_test.go):
// one headless Chromium per test, started with the project's flags and a
// fresh profile, that records the requests and console messages of its
// tab; the waits, evaluations and assertions those tests share.
//
// scripts/browser-deps installs Chromium. A test that needs it fails, and
// never skips, when it is missing: a skipped browser test would pass CI
// without testing the browser.
//
// Everything fails the test it was given (t.Fatal) rather than returning
// errors, so it must be called from the test's goroutine.
package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is the browser the tests drive: Debian's chromium package,
// as scripts/browser-deps installs it.
const ChromiumPath = "/usr/bin/chromium"

// Require fails the test, pointing at scripts/browser-deps, when Chromium
// or one of the given files (such as the analytics-next bundle that
// scripts/browser-deps builds) is missing.
func Require(t testing.TB, files ...string) {
	t.Helper()
	for _, path := range append([]string{ChromiumPath}, files...) {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%v: run scripts/browser-deps (as root) to install Chromium and build the analytics-next bundle", err)
		}
	}
}

// Options configure a Browser.
type Options struct {
	// Width and Height are the window and viewport size in CSS pixels;
	// zero keeps Chromium's default window. With a size, scrollbars are
	// hidden, so screenshots are exactly Width pixels wide.
	Width, Height int
	// Debug are JavaScript expressions whose values a failed Poll prints
	// beside the requests, such as "window.__liveagentCalls".
	Debug []string
	// Lifetime bounds the browser's life; zero is two minutes.
	Lifetime time.Duration
}

// Browser is one headless Chromium with one tab, and what the tab did.
type Browser struct {
	t    testing.TB
	ctx  context.Context
	opts Options

	mu       sync.Mutex
	requests []Request
	console  []chromedp.ConsoleMessage
}

// Request is a request the page sent.
type Request struct{ Method, URL string }

func (r Request) String() string { return r.Method + " " + r.URL }

// New starts Chromium for the test with a fresh user-data directory (so a
// fresh anonymousId, no cookies and no cache) and opens a tab. Everything
// stops when the test ends, or when Options.Lifetime has passed. When the
// test failed, the console messages and requests of the tab are logged.
func New(t testing.TB, o Options) *Browser {
	t.Helper()
	Require(t)
	if o.Lifetime == 0 {
		o.Lifetime = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Lifetime)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
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
	var start []chromedp.Action[chromedp.Void]
	if o.Width > 0 && o.Height > 0 {
		opts = append(opts, chromedp.WindowSize(o.Width, o.Height), chromedp.Flag("hide-scrollbars", true))
		start = append(start, chromedp.EmulateViewport(int64(o.Width), int64(o.Height)))
	}
	// Registered after TempDir, so Chromium has exited when it is removed.
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	b := &Browser{t: t, opts: o}
	b.open(actx, start...)
	return b
}

// NewTab opens another tab in b's browser: the same profile, so the same
// cookies and localStorage, as a visitor's second tab. It records its own
// requests and console messages and closes when the test ends.
func (b *Browser) NewTab() *Browser {
	b.t.Helper()
	tab := &Browser{t: b.t, opts: b.opts}
	var start []chromedp.Action[chromedp.Void]
	if o := b.opts; o.Width > 0 && o.Height > 0 {
		start = append(start, chromedp.EmulateViewport(int64(o.Width), int64(o.Height)))
	}
	tab.open(b.ctx, start...)
	return tab
}

// open opens the tab of b under parent (an allocator's context: a new
// browser; a tab's: a new tab in its browser), runs start and records the
// tab's console messages; when the test failed they are logged, with the
// requests.
func (b *Browser) open(parent context.Context, start ...chromedp.Action[chromedp.Void]) {
	t := b.t
	bctx, bcancel := chromedp.NewContext(parent, chromedp.WithListener(b.listen))
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, start...); err != nil {
		t.Fatalf("start %s: %v", ChromiumPath, err)
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
}

// Context is the tab's context, for chromedp calls the helpers lack.
func (b *Browser) Context() context.Context { return b.ctx }

// listen records the page's requests. It runs on chromedp's reader.
func (b *Browser) listen(ev any) {
	if ev, ok := ev.(*network.EventRequestWillBeSent); ok && ev.Request != nil {
		b.mu.Lock()
		b.requests = append(b.requests, Request{ev.Request.Method, ev.Request.URL})
		b.mu.Unlock()
	}
}

// Requests lists the requests the tab sent so far, in order.
func (b *Browser) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// Do runs the action within timeout, failing the test on an error.
func (b *Browser) Do(timeout time.Duration, action chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, action); err != nil {
		b.t.Fatal(err)
	}
}

// Poll waits until the JavaScript expression is truthy; on a timeout it
// fails the test with the values of Options.Debug and the requests.
func (b *Browser) Poll(timeout time.Duration, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\n%srequests: %v", expr, err, b.debug(), b.Requests())
	}
}

// PollAcrossLoads waits until the expression is truthy while the page may
// be navigating or reloading: an evaluation that fails because the old
// page went away is retried.
func (b *Browser) PollAcrossLoads(timeout time.Duration, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for %s: %v (last error %v)\n%srequests: %v", expr, ok, err, b.debug(), b.Requests())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// debug evaluates Options.Debug, one "expr: value" line each; an
// expression that fails shows its error.
func (b *Browser) debug() string {
	var s strings.Builder
	for _, expr := range b.opts.Debug {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
		cancel()
		if err != nil {
			v = []byte("(" + err.Error() + ")")
		}
		s.WriteString(expr + ": " + string(v) + "\n")
	}
	return s.String()
}

// Eval returns the expression's value as JSON.
func (b *Browser) Eval(expr string, opts ...chromedp.EvaluateOption) []byte {
	b.t.Helper()
	return Eval[[]byte](b, expr, opts...)
}

// Eval returns the expression's value decoded into T, within 20 seconds
// (with chromedp.EvalAwaitPromise, once the promise settled).
func Eval[T any](b *Browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Text is the rendered text (innerText, trimmed) of the first element
// that matches the CSS selector.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	return Eval[string](b, `document.querySelector(`+strconv.Quote(selector)+`).innerText.trim()`)
}

// WaitRequests waits until the requests the tab sent satisfy ok.
func (b *Browser) WaitRequests(timeout time.Duration, ok func([]Request) bool) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok(b.Requests()) {
		if time.Now().After(deadline) {
			b.t.Fatalf("the page did not send the expected requests: %v", b.Requests())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot is a PNG of the whole page, beyond the viewport.
func (b *Browser) Screenshot() []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	return png
}

// AssertLocal checks that the tab sent requests, every one to origin
// (such as "http://127.0.0.1:8080") or of a data: URL: nothing left the
// test server.
func (b *Browser) AssertLocal(origin string) {
	b.t.Helper()
	rs := b.Requests()
	if len(rs) == 0 {
		b.t.Error("no request recorded")
	}
	for _, r := range rs {
		if !strings.HasPrefix(r.URL, origin+"/") && !strings.HasPrefix(r.URL, "data:") {
			b.t.Errorf("request to outside the test server: %s", r)
		}
	}
}

// AssertNoExceptions checks that nothing threw uncaught on the page.
func (b *Browser) AssertNoExceptions() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if m.IsException() {
			b.t.Errorf("the page threw: %s", m.Text)
		}
	}
}

// CountPosts counts the POST requests to url.
func CountPosts(rs []Request, url string) int {
	n := 0
	for _, r := range rs {
		if r.Method == "POST" && r.URL == url {
			n++
		}
	}
	return n
}

// AssertJSON compares two JSON values, whatever their formatting and key
// order, and reports both indented when they differ.
func AssertJSON(t testing.TB, what string, got []byte, want string) {
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

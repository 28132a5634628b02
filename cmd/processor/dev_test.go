package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

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
	res := dev.request(http.MethodPost, "/v1/t", `{"writeKey":"dev-write-key","type":"track","event":"Live Chat Conversation Started","anonymousId":"dev-visitor","messageId":"dev-start-1","properties":{"subject":"Shoes","caseStatus":"New"}}`)
	if res.status != http.StatusOK || !strings.Contains(res.body, `"success":true`) {
		t.Fatalf("ingest with the dev write key: %d %s", res.status, res.body)
	}
	if res := dev.request(http.MethodPost, "/v1/t", `{"writeKey":"not-the-key","event":"x","anonymousId":"a"}`); res.status != http.StatusUnauthorized {
		t.Errorf("ingest with another write key: %d, want 401", res.status)
	}
	res = dev.request(http.MethodGet, "/v1/prechat/dev-visitor?wait=10&after=dev-start-1", "")
	if res.status != http.StatusOK || !strings.Contains(res.body, `"value": "Shoes"`) || !strings.Contains(res.body, `"complete": true`) {
		t.Fatalf("GET the document: %d %s", res.status, res.body)
	}
	// The demo page and its assets.
	for path, want := range map[string]string{
		"/":                  "Pre-chat form",
		"/dev/analytics.js":  "@segment/analytics-next 1.84.3",
		"/dev/deployment.js": "__liveagentCalls",
		"/v1/prechat.js":     `"/dev/deployment.js"`,
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
	res = dev.request(http.MethodGet, "/v1/prechat/dev-visitor", "")
	if res.status != http.StatusOK || !strings.Contains(res.body, `"value": "Shoes"`) {
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
const devOriginalCalls = `[
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
	["addCustomDetail", "Subject", "Order 42 is late", true],
	["map", "Subject", "Subject", false, false, true],
	["findOrCreate", "Account"],
	["addCustomDetail", "Account Website", "acme.test", true],
	["map", "Website", "Account Website", true, true, false],
	["addCustomDetail", "Account Revenue", 100, true],
	["map", "AnnualRevenue", "Account Revenue", false, false, false],
	["init", "https://d.la3-c1cs-phx.salesforceliveagent.com/chat", "5723D00000000F4", "00D3D000000DIdG"]
]`

// TestDevDemoPageInBrowser drives the demo page of processor dev in headless
// Chromium: the form goes through analytics-next to the ingest, and the
// agent view shows the liveagent calls the snippet made. With
// PRECHAT_UPDATE_SCREENSHOT=1 it writes the screenshot to docs/demo-page.png.
func TestDevDemoPageInBrowser(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(devChromium); err != nil {
		t.Fatalf("%v: run scripts/browser-deps (as root) to install Chromium", err)
	}
	dev := startDev(t, []string{"DATABASE_URL=" + persistencetest.NewDatabase(t)}, "--data-dir", t.TempDir(), "--kafka-port", "0")
	b := newDevBrowser(t, 1280, 900)

	b.do(30*time.Second, chromedp.Navigate(dev.base+"/"))
	b.poll(20*time.Second, `typeof window.liveagent === 'object' && !!window.prechat &&
		document.body.getAttribute('data-state') === 'idle' && /^Ready/.test(document.getElementById('status-text').textContent)`)
	if got := b.text("#agent-view"); !strings.Contains(got, "No liveagent calls yet") {
		t.Errorf("the agent view before the chat:\n%s", got)
	}

	for id, value := range map[string]string{
		"name": "Ada Lovelace", "email": "ada@example.com", "company": "Acme", "website": "acme.test",
		"revenue": "100", "subject": "Order 42 is late",
	} {
		b.do(10*time.Second, chromedp.SendKeys(chromedp.ID(id), value))
	}
	b.do(10*time.Second, chromedp.SetValue(chromedp.ID("caseStatus"), "New"))
	b.do(10*time.Second, chromedp.Click(chromedp.ID("start")))
	b.poll(30*time.Second, `!!document.querySelector('#init-call .chat-url')`)

	assertDevJSON(t, "liveagent calls", b.eval(`window.__liveagentCalls`), devOriginalCalls)
	view := b.text("#agent-view")
	for _, want := range []string{
		"Ada Lovelace", "User Email", "ada@example.com", "Contact", "Case", "Account",
		"Order 42 is late", "acme.test", "Contact.Email", "Account.AnnualRevenue", "liveagent.init",
		"https://d.la3-c1cs-phx.salesforceliveagent.com/chat", "5723D00000000F4", "00D3D000000DIdG",
	} {
		if !strings.Contains(view, want) {
			t.Errorf("the agent view lacks %q:\n%s", want, view)
		}
	}
	if state := evalDev[string](b, `document.body.getAttribute('data-state')`); state != "applied" {
		t.Errorf("status %q (%s), want applied", state, b.text("#status"))
	}
	anon := evalDev[string](b, `prechat.anonymousId()`)
	if shown := b.text("#anonymous-id"); anon == "" || shown != anon {
		t.Errorf("the page shows the anonymousId %q, the visitor's is %q", shown, anon)
	}
	if doc := evalDev[string](b, `JSON.parse(document.getElementById('document-json').textContent).anonymousId`); doc != anon {
		t.Errorf("the document shown is of %q, want %q", doc, anon)
	}

	// Events went to the local ingest, and nothing left the local server.
	rs := b.requestList()
	for _, path := range []string{"/v1/i", "/v1/g", "/v1/t"} {
		if !slices.ContainsFunc(rs, func(r devRequest) bool { return r.method == http.MethodPost && r.url == dev.base+path }) {
			t.Errorf("analytics-next did not POST %s; requests: %v", path, rs)
		}
	}
	for _, r := range rs {
		if !strings.HasPrefix(r.url, dev.base+"/") && !strings.HasPrefix(r.url, "data:") {
			t.Errorf("request to outside the local server: %s", r)
		}
	}
	b.assertNoExceptions()

	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if w := img.Bounds().Dx(); w != 1280 {
		t.Errorf("screenshot %d pixels wide, want 1280", w)
	}
	out := filepath.Join(t.TempDir(), "demo-page.png")
	if os.Getenv("PRECHAT_UPDATE_SCREENSHOT") == "1" {
		out = filepath.Join("..", "..", "docs", "demo-page.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%dx%d)", out, img.Bounds().Dx(), img.Bounds().Dy())

	// The collapsible raw list is the recorded calls.
	b.do(10*time.Second, chromedp.Click(chromedp.CSS("#raw-calls summary")))
	assertDevJSON(t, "the raw calls shown", []byte(b.text("#calls-json")), devOriginalCalls)

	// "New visitor" starts over with another anonymousId and no calls.
	b.do(10*time.Second, chromedp.Click(chromedp.ID("reset")))
	b.pollAcrossLoads(20*time.Second, `!!window.prechat && (window.__liveagentCalls || [1]).length === 0 &&
		/^Ready/.test(document.getElementById('status-text').textContent) &&
		document.getElementById('anonymous-id').textContent !== `+strconv.Quote(anon))
	if got := b.text("#agent-view"); !strings.Contains(got, "No liveagent calls yet") {
		t.Errorf("the agent view of a new visitor:\n%s", got)
	}
	b.assertNoExceptions()

	dev.stop()
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
			"WRITE_KEYS", "LOG_FORMAT", "LOG_LEVEL", "DEPLOYMENT_SCRIPT_URL", "ALLOWED_ORIGINS":
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
	req, err := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain")
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
			t.Errorf("a postgres process of the data folder still runs: pid %d: %s", pid, args)
		}
	}
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

// The browser of the demo test: Debian's Chromium, as api/browser_test.go
// drives it.
const devChromium = "/usr/bin/chromium"

type devBrowser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []devRequest
	console  []chromedp.ConsoleMessage
}

type devRequest struct{ method, url string }

func (r devRequest) String() string { return r.method + " " + r.url }

// newDevBrowser starts headless Chromium with a fresh profile and a window
// of the given size; it stops when the test ends, or after two minutes.
func newDevBrowser(t *testing.T, width, height int) *devBrowser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(devChromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(width, height),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	// Registered after TempDir, so Chromium has exited when it is removed.
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	b := &devBrowser{t: t}
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("start %s: %v", devChromium, err)
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
func (b *devBrowser) listen(ev any) {
	if ev, ok := ev.(*network.EventRequestWillBeSent); ok && ev.Request != nil {
		b.mu.Lock()
		b.requests = append(b.requests, devRequest{ev.Request.Method, ev.Request.URL})
		b.mu.Unlock()
	}
}

func (b *devBrowser) requestList() []devRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// do runs the action within timeout, failing the test on an error.
func (b *devBrowser) do(timeout time.Duration, action chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, action); err != nil {
		b.t.Fatal(err)
	}
}

// poll waits until the expression is truthy.
func (b *devBrowser) poll(timeout time.Duration, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\nstatus: %s\nliveagent calls: %s\nrequests: %v",
			expr, err, b.text("#status"), b.eval(`window.__liveagentCalls`), b.requestList())
	}
}

// pollAcrossLoads waits until the expression is truthy while the page may
// be reloading: an evaluation that fails with the old page is retried.
func (b *devBrowser) pollAcrossLoads(timeout time.Duration, expr string) {
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
			b.t.Fatalf("waiting for %s: %v (last error %v)\nrequests: %v", expr, ok, err, b.requestList())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is the rendered text (innerText) of the first element matching the
// CSS selector.
func (b *devBrowser) text(selector string) string {
	b.t.Helper()
	return evalDev[string](b, `document.querySelector(`+strconv.Quote(selector)+`).innerText.trim()`)
}

// eval returns the expression's value as JSON.
func (b *devBrowser) eval(expr string) []byte {
	b.t.Helper()
	return evalDev[[]byte](b, expr)
}

func evalDev[T any](b *devBrowser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// assertNoExceptions checks that nothing threw uncaught on the page.
func (b *devBrowser) assertNoExceptions() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if m.IsException() {
			b.t.Errorf("the page threw: %s", m.Text)
		}
	}
}

// assertDevJSON compares JSON values.
func assertDevJSON(t *testing.T, what string, got []byte, want string) {
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

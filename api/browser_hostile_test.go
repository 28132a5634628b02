package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/browsertest"
	"github.com/prechat/prechat/standins"
)

// clobberings are markup that an HTML sanitizer lets through (ids, names,
// links, forms, images) and that names elements after the snippet's
// globals: each must not change which scripts load, where the document is
// fetched from, or whether the snippet runs.
var clobberings = map[string]string{
	// window.prechatConfig becomes a collection whose scriptUrl and apiBase
	// are links: their text is their href.
	"collection": `<a id="prechatConfig"></a><a id="prechatConfig" name="scriptUrl" href="https://evil.test/deployment.js"></a>` +
		`<a id="prechatConfig" name="apiBase" href="https://evil.test"></a>`,
	// window.prechatConfig becomes a form, its fields its inputs.
	"form": `<form name="prechatConfig"><input name="scriptUrl" value="https://evil.test/deployment.js"><input name="apiBase" value="https://evil.test"></form>`,
	// document.currentScript becomes an image: the API would be its origin.
	"currentScript": `<img name="currentScript" src="https://evil.test/v1/prechat.js">`,
	// window.prechat (the snippet's "already loaded" mark) and
	// window.embedded_svc (another product's) become elements.
	"globals": `<a id="prechat" href="https://evil.test/"></a><form name="embedded_svc"></form><embed name="embeddedservice_bootstrap">`,
}

// TestBrowserSnippetIgnoresClobberedGlobals: with each clobbering in the
// page before the snippet, the snippet still runs, loads the configured
// deployment.js from its own origin's settings, fetches the document from
// its own origin, and applies it; nothing is requested elsewhere.
func TestBrowserSnippetIgnoresClobberedGlobals(t *testing.T) {
	t.Parallel()
	requireBrowserDeps(t)
	_, routes := optionsDocument(t)
	for name, markup := range clobberings {
		routes["GET /test/clobbered-"+name+".html"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>clobbered</title></head><body>
<div class="user-content">` + markup + `</div>
<script>window.__prechatErrors = []; window.__clobbered = typeof window.prechatConfig + " " + typeof document.currentScript;</script>
<script src="/v1/prechat.js"></script>
</body></html>`))
		})
	}
	s := newStack(t, stackOptions{deploymentJS: standInJS, extraRoutes: routes, noConsumer: true})
	for name, markup := range clobberings {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t)
			b.Do(30*time.Second, chromedp.Navigate(s.url+"/test/clobbered-"+name+".html"))
			b.Poll(10*time.Second, `!!window.prechat && typeof window.prechat.start === 'function'`)
			if got := browsertest.Eval[string](b, `prechat.apiBase + " " + prechat.scriptUrl + " " + prechat.product`); got != s.url+" "+standInJS+" liveAgent" {
				t.Errorf("apiBase, scriptUrl, product: %q", got)
			}
			b.Poll(10*time.Second, `typeof window.liveagent === 'object' && typeof liveagent.init === 'function'`)
			applied := browsertest.Eval[map[string]any](b, `prechat.start({anonymousId: '`+optionsVisitor+`', wait: 0})`, chromedp.EvalAwaitPromise)
			if applied["anonymousId"] != optionsVisitor {
				t.Fatalf("start() resolved to %v; errors %s", applied, b.Eval(`window.__prechatErrors`))
			}
			browsertest.AssertJSON(t, "liveagent calls", b.Eval(`window.__liveagentCalls`), optionsCalls)
			// Nothing left the test server but what the markup itself loads.
			for _, r := range b.Requests() {
				if !strings.HasPrefix(r.URL, s.url+"/") && !strings.HasPrefix(r.URL, "data:") && !strings.Contains(markup, `src="`+r.URL+`"`) {
					t.Errorf("request to outside the test server: %s", r)
				}
			}
			b.AssertNoExceptions()
		})
	}
}

// cspNonce is the nonce of the CSP page's own inline script.
const cspNonce = "cHJlY2hhdC1jc3AtdGVzdA"

// strictCSP is docs/snippet.md's policy ("Content-Security-Policy") for a page
// whose own scripts carry cspNonce: nothing is allowed but the page's
// nonce'd script, scripts from the Prechat origin and deployment.js's
// origin, and connections to the Prechat origin.
func strictCSP(prechat, deployment string) string {
	return "default-src 'none'; script-src 'nonce-" + cspNonce + "' " + prechat + " " + deployment + "; connect-src " + prechat +
		"; img-src data:; base-uri 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'none'"
}

// TestBrowserSnippetUnderStrictCSP: a customer page on its own origin,
// served with a strict Content-Security-Policy that allows scripts only
// from the Prechat origin and deployment.js's origin (and its own nonce),
// and connections only to the Prechat origin, loads the snippet, which
// loads deployment.js and applies a document, without one violation.
// (The page's one inline script without the nonce is blocked: the policy
// is enforced.)
func TestBrowserSnippetUnderStrictCSP(t *testing.T) {
	t.Parallel()
	requireBrowserDeps(t)
	deployment := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, standins.FS, "deployment.js")
	}))
	t.Cleanup(deployment.Close)
	var prechatOrigin string
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", strictCSP(prechatOrigin, deployment.URL))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>strict CSP</title>
<script nonce="` + cspNonce + `">
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', function (e) { window.__cspViolations.push(e.effectiveDirective + ' ' + e.blockedURI); });
  window.__prechatErrors = [];
  window.prechatConfig = { onError: function (err) { window.__prechatErrors.push(String(err && err.message)); } };
</script>
<script>window.__inlineRan = true;</script>
<script src="` + prechatOrigin + `/v1/prechat.js"></script>
</head><body><p>A shop.</p></body></html>`))
	}))
	t.Cleanup(site.Close)

	_, routes := optionsDocument(t)
	doc := routes["GET /v1/prechat/"+optionsVisitor]
	// The stand-in document route answers cross-origin requests as the API does.
	routes["GET /v1/prechat/"+optionsVisitor] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", site.URL)
		doc.ServeHTTP(w, r)
	})
	s := newStack(t, stackOptions{deploymentJS: deployment.URL + "/deployment.js", extraRoutes: routes, noConsumer: true,
		api: api.Config{AllowedOrigins: []string{site.URL}}})
	prechatOrigin = s.url

	b := newBrowser(t)
	b.Do(30*time.Second, chromedp.Navigate(site.URL+"/"))
	b.Poll(10*time.Second, `!!window.prechat && typeof window.liveagent === 'object' && typeof liveagent.init === 'function'`)
	applied := browsertest.Eval[map[string]any](b, `prechat.start({anonymousId: '`+optionsVisitor+`', wait: 0})`, chromedp.EvalAwaitPromise)
	if applied["anonymousId"] != optionsVisitor {
		t.Fatalf("start() under the CSP resolved to %v; errors %s; violations %s", applied, b.Eval(`window.__prechatErrors`), b.Eval(`window.__cspViolations`))
	}
	browsertest.AssertJSON(t, "liveagent calls", b.Eval(`window.__liveagentCalls`), optionsCalls)
	browsertest.AssertJSON(t, "onError calls", b.Eval(`window.__prechatErrors`), `[]`)
	if ran := browsertest.Eval[bool](b, `window.__inlineRan === true`); ran {
		t.Fatal("an inline script without the nonce ran: the policy is not enforced")
	}
	violations := browsertest.Eval[[]string](b, `window.__cspViolations`)
	if len(violations) != 1 || !strings.HasPrefix(violations[0], "script-src-elem inline") {
		t.Fatalf("CSP violations %q, want only the page's own inline script", violations)
	}
	b.AssertNoExceptions()
}

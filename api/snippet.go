package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prechat/prechat/mapping"
)

//go:embed snippet/prechat.js
var snippetSource string

// snippetGlobals are the products with a snippet variant, and the global
// object each variant waits for.
var snippetGlobals = map[mapping.Product]string{
	mapping.ProductLiveAgent:    "liveagent",
	mapping.ProductEmbeddedChat: "embedded_svc",
	mapping.ProductMessaging:    "embeddedservice_bootstrap",
}

// renderSnippet renders the snippet served as /v1/prechat.js: the liveAgent
// variant that also detects the other products and loads their variants.
func renderSnippet(scriptURL string) ([]byte, error) {
	return renderVariant(scriptURL, "")
}

// renderVariant renders the variant of the snippet for one product ("":
// the detecting default). It keeps the lines between "//#if TAG…" and
// "//#end" when a TAG is the product (or, for the default, liveAgent or
// detect), fills in the deployment.js URL, the product and its global, and
// shrinks the source without a build step: it drops lines that are blank or
// hold only a // comment, indentation, the spaces that separate no words,
// and the line breaks after ; { } and , (the source ends every statement
// with a semicolon). String and regular expression literals are kept as
// they are.
func renderVariant(scriptURL string, product mapping.Product) ([]byte, error) {
	tags := map[string]bool{string(product): true}
	if product == "" {
		product = mapping.ProductLiveAgent
		tags = map[string]bool{"liveAgent": true, "detect": true}
	}
	global, ok := snippetGlobals[product]
	if !ok {
		return nil, fmt.Errorf("no snippet for product %q", product)
	}
	var lines []string
	keep, open := true, false
	for i, line := range strings.Split(snippetSource, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "//#if "):
			if open {
				return nil, fmt.Errorf("prechat.js:%d: //#if blocks do not nest", i+1)
			}
			open, keep = true, false
			for _, t := range strings.Fields(strings.TrimPrefix(line, "//#if ")) {
				keep = keep || tags[t]
			}
			continue
		case line == "//#end":
			open, keep = false, true
			continue
		case !keep || line == "" || strings.HasPrefix(line, "//"):
			continue
		}
		lines = append(lines, line)
	}
	if open {
		return nil, errors.New("prechat.js: an //#if block has no //#end")
	}
	src := strings.Join(lines, "\n")
	for placeholder, value := range map[string]string{
		`"__DEPLOYMENT_SCRIPT_URL__"`: scriptURL,
		`"__PRODUCT__"`:               string(product),
		`"__GLOBAL__"`:                global,
	} {
		v, err := json.Marshal(value)
		if err != nil {
			return nil, err
		}
		src = strings.ReplaceAll(src, placeholder, string(v))
	}
	return squeeze(src), nil
}

// snippetVariants caches the rendered variants by deployment.js URL and
// product.
var snippetVariants sync.Map

// squeeze removes the whitespace of JavaScript source that separates no
// tokens. It knows string literals, regular expression literals (see
// regexStart) and nothing else, which is enough for prechat.js: no inline
// comments, no template literals, and a semicolon after every statement.
func squeeze(src string) []byte {
	var out bytes.Buffer
	word := func(c byte) bool {
		return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
	}
	last := func() byte {
		if out.Len() == 0 {
			return '\n'
		}
		return out.Bytes()[out.Len()-1]
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			out.WriteString(src[i:min(j+1, len(src))])
			i = j
		case c == '/' && regexStart(out.Bytes()):
			j, class := i+1, false
			for j < len(src) && (src[j] != '/' || class) {
				switch src[j] {
				case '\\':
					j++
				case '[':
					class = true
				case ']':
					class = false
				}
				j++
			}
			out.WriteString(src[i:min(j+1, len(src))])
			i = j
		case c == ' ' || c == '\t' || c == '\n':
			j := i
			nl := false
			for j < len(src) && (src[j] == ' ' || src[j] == '\t' || src[j] == '\n') {
				nl = nl || src[j] == '\n'
				j++
			}
			p, n := last(), byte(0)
			if j < len(src) {
				n = src[j]
			}
			switch {
			case nl && strings.IndexByte(";{},\n", p) < 0 && n != '}':
				out.WriteByte('\n')
			case word(p) && word(n) || p == n && (p == '+' || p == '-'):
				out.WriteByte(' ')
			}
			i = j - 1
		default:
			out.WriteByte(c)
		}
	}
	if last() != '\n' {
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// regexStart reports whether a / after the source so far starts a regular
// expression literal rather than a division: after an operator, an opening
// bracket, a line start or a keyword such as return.
func regexStart(before []byte) bool {
	if len(before) == 0 || bytes.IndexByte([]byte("(,=:[!&|?{};+-*%<>~^\n"), before[len(before)-1]) >= 0 {
		return true
	}
	i := len(before)
	for i > 0 && (before[i-1] >= 'a' && before[i-1] <= 'z') {
		i--
	}
	switch string(before[i:]) {
	case "return", "typeof", "case", "in", "of", "void", "delete", "throw", "new", "else", "do":
		return i == 0 || !(before[i-1] == '_' || before[i-1] == '$' || before[i-1] == '.' ||
			before[i-1] >= '0' && before[i-1] <= '9' || before[i-1] >= 'A' && before[i-1] <= 'Z')
	}
	return false
}

// getSnippet serves GET /v1/prechat.js, and with ?product=NAME the
// variant of that product.
func (s *Server) getSnippet(w http.ResponseWriter, r *http.Request) {
	body := s.snippet
	if q := r.URL.Query(); q.Has("product") {
		p := mapping.Product(q.Get("product"))
		if _, ok := snippetGlobals[p]; !ok {
			writeError(w, http.StatusBadRequest, "bad_request", "product must be liveAgent, embeddedChat or messaging", 0)
			return
		}
		key := s.cfg.DeploymentScriptURL + "\x00" + string(p)
		v, ok := snippetVariants.Load(key)
		if !ok {
			b, err := renderVariant(s.cfg.DeploymentScriptURL, p)
			if err != nil {
				writeError(w, http.StatusInternalServerError, "internal", err.Error(), 0)
				return
			}
			v, _ = snippetVariants.LoadOrStore(key, b)
		}
		body = v.([]byte)
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

//go:embed snippet/prechat.js
var snippetSource string

// renderSnippet fills in the deployment.js URL and strips comments and
// indentation, so the served snippet stays small without a build step.
func renderSnippet(scriptURL string) ([]byte, error) {
	u, err := json.Marshal(scriptURL)
	if err != nil {
		return nil, err
	}
	src := strings.ReplaceAll(snippetSource, `"__DEPLOYMENT_SCRIPT_URL__"`, string(u))
	var out bytes.Buffer
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// getSnippet serves GET /v1/prechat.js.
func (s *Server) getSnippet(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Length", strconv.Itoa(len(s.snippet)))
	_, _ = w.Write(s.snippet)
}

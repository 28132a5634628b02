package api

import (
	"net/http"
	"slices"
)

// cors applies ALLOWED_ORIGINS: a listed Origin is echoed back (with
// Vary: Origin) and may send credentials; "*" allows any other origin as
// "*", never with credentials, so no page can read answers with the
// visitor's cookies. Preflight requests are answered here, with 403 for an
// origin that is not allowed. Requests without an Origin header (servers,
// curl) are not affected.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		listed := origin != "" && origin != "*" && slices.Contains(s.cfg.AllowedOrigins, origin)
		allowed := listed || origin != "" && slices.Contains(s.cfg.AllowedOrigins, "*")
		if origin != "" {
			w.Header().Add("Vary", "Origin")
		}
		switch h := w.Header(); {
		case listed:
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		case allowed:
			h.Set("Access-Control-Allow-Origin", "*")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				writeError(w, http.StatusForbidden, "forbidden", "origin not allowed", 0)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Content-Encoding, "+TokenHeader)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

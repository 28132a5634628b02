package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// errorBody is every error answer's JSON body.
type errorBody struct {
	// Error is a stable code: bad_request, not_found, unauthorized,
	// too_large, timeout, rate_limited, unavailable, internal.
	Error string `json:"error"`
	// Message says what went wrong, for people.
	Message string `json:"message"`
}

// writeError answers with status and a JSON error body; retryAfter > 0 sets
// Retry-After (seconds).
func writeError(w http.ResponseWriter, status int, code, message string, retryAfter int) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: code, Message: message})
}

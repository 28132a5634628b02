package mapping

import (
	"bytes"
	"encoding/json"
)

// TokenHashLength is the length of a conversation's token hash: the
// lowercase hex SHA-256 of the conversation secret.
const TokenHashLength = 64

// PrechatContext is context.prechat of an event: what Prechat's snippet, or
// the site's server, adds for Prechat alone.
type PrechatContext struct {
	// UserHash is the lowercase hex HMAC-SHA256 of the userId under a secret
	// the site's server shares with Prechat (IDENTITY_SECRET).
	UserHash string
	// IdentityToken is a JWT (RS256 or ES256) whose sub is the userId,
	// signed by the site (IDENTITY_JWT_KEYS verifies it).
	IdentityToken string
	// TokenHash is a conversation start's tokenHash (empty on every other
	// event): the lowercase hex
	// SHA-256 of the secret that the page which started the conversation
	// holds (the snippet makes one per conversation start) and presents to
	// read the document. Segment, its destinations and the logs only ever
	// see this hash. "" when the start carried none: the document is then
	// stored without one, and DOCUMENT_ACCESS=token never serves it.
	TokenHash string
}

// prechatContext reads context.prechat once for every use. The proofs are
// read leniently: a proof that is not a string (or is longer than
// maxProofLength) is no proof, and never makes an event invalid. problem
// says what is wrong with a tokenHash, or with a context.prechat that is not
// an object: Decode makes only a conversation start invalid for it (a
// client that sends a malformed hash is broken, and storing its
// conversation would only produce a document that no page can read).
func prechatContext(raw json.RawMessage) (p PrechatContext, problem error) {
	if isNull(raw) || raw[0] != '{' || !containsFold(raw, "prechat") {
		return PrechatContext{}, nil
	}
	var c struct {
		Prechat json.RawMessage `json:"prechat"`
	}
	if json.Unmarshal(raw, &c) != nil || isNull(c.Prechat) {
		return PrechatContext{}, nil
	}
	var fields struct {
		UserHash, IdentityToken, TokenHash json.RawMessage
	}
	if c.Prechat[0] != '{' || json.Unmarshal(c.Prechat, &fields) != nil {
		return PrechatContext{}, invalidEvent("context.prechat is not a JSON object")
	}
	str := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) != nil || len(s) > maxProofLength {
			return ""
		}
		return s
	}
	p = PrechatContext{UserHash: str(fields.UserHash), IdentityToken: str(fields.IdentityToken)}
	if !isNull(fields.TokenHash) {
		if json.Unmarshal(fields.TokenHash, &p.TokenHash) != nil || (p.TokenHash != "" && !isTokenHash(p.TokenHash)) {
			p.TokenHash = ""
			problem = invalidEvent("context.prechat.tokenHash must be %d lowercase hex digits (the SHA-256 of the conversation secret)", TokenHashLength)
		}
	}
	return p, problem
}

// containsFold reports whether raw holds word in any letter case (JSON
// object keys match fields case-insensitively), without copying raw.
func containsFold(raw []byte, word string) bool {
	w := []byte(word)
	for i := 0; i+len(w) <= len(raw); i++ {
		if bytes.EqualFold(raw[i:i+len(w)], w) {
			return true
		}
	}
	return false
}

// isTokenHash reports whether h is TokenHashLength lowercase hex digits.
func isTokenHash(h string) bool {
	if len(h) != TokenHashLength {
		return false
	}
	for i := range len(h) {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

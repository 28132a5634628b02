package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// TokenHeader is the request header that carries the conversation secret:
// the value whose lowercase hex SHA-256 the conversation start sent as
// context.prechat.tokenHash.
const TokenHeader = "X-Prechat-Token"

// DocumentAccess says who may read a document.
type DocumentAccess string

const (
	// AccessToken serves a document only to a request whose TokenHeader
	// hashes to the conversation's token hash: the page that started the
	// conversation, which made the secret and sent only its hash. The
	// default.
	AccessToken DocumentAccess = "token"
	// AccessAnonymousID serves a document to anyone who names its
	// anonymousId, as Prechat did before conversation secrets. Weaker: the
	// anonymousId sits in a script-readable cookie, in every event sent to
	// every destination, and in logs.
	AccessAnonymousID DocumentAccess = "anonymousId"
)

// ParseDocumentAccess checks a DOCUMENT_ACCESS value.
func ParseDocumentAccess(s string) (DocumentAccess, error) {
	switch a := DocumentAccess(s); a {
	case AccessToken, AccessAnonymousID:
		return a, nil
	}
	return "", fmt.Errorf("%q is not %s or %s", s, AccessToken, AccessAnonymousID)
}

// readable returns the stored document if this request may read it, else
// nil: exactly what a request for an unknown visitor gets, so the answer
// (status, body, headers, and how long a long-poll waits) never tells that
// a document exists. Under AccessToken the token must be non-empty and hash
// to the stored token hash, compared in constant time; a document stored
// without a token hash opens to no token.
//
// The work does not depend on whether there is a document: the token is
// hashed and compared either way.
func (s *Server) readable(d cachedDoc, token string) []byte {
	if s.cfg.DocumentAccess == AccessAnonymousID {
		return d.body
	}
	sum := sha256.Sum256([]byte(token))
	var got [2 * sha256.Size]byte
	hex.Encode(got[:], sum[:])
	match := subtle.ConstantTimeCompare(got[:], []byte(d.tokenHash)) == 1
	if !match || token == "" || d.body == nil {
		return nil
	}
	return d.body
}

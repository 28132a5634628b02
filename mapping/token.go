package mapping

import (
	"encoding/json"
)

// TokenHashLength is the length of a conversation's token hash: the
// lowercase hex SHA-256 of the conversation secret.
const TokenHashLength = 64

// conversationTokenHash reads context.prechat.tokenHash of a conversation
// start: the lowercase hex SHA-256 of the secret that the page which started
// the conversation holds (the snippet makes one per conversation start), and
// which it presents to read the document. Segment, its destinations and the
// logs only ever see this hash.
//
// Absent, null or "" is no token: the document is then stored without one,
// and DOCUMENT_ACCESS=token never serves it. Anything else that is not 64
// lowercase hex digits makes the event invalid (a dead letter with the
// reason): a client that sends a malformed hash is broken, and storing its
// conversation would only produce a document that no page can read.
func conversationTokenHash(context json.RawMessage) (string, error) {
	if isNull(context) {
		return "", nil
	}
	var c map[string]json.RawMessage
	if err := json.Unmarshal(context, &c); err != nil {
		return "", invalidEvent("context is not a JSON object")
	}
	if isNull(c["prechat"]) {
		return "", nil
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(c["prechat"], &p); err != nil {
		return "", invalidEvent("context.prechat is not a JSON object")
	}
	raw := p["tokenHash"]
	if isNull(raw) {
		return "", nil
	}
	var h string
	if err := json.Unmarshal(raw, &h); err != nil || (h != "" && !isTokenHash(h)) {
		return "", invalidEvent("context.prechat.tokenHash must be %d lowercase hex digits (the SHA-256 of the conversation secret)", TokenHashLength)
	}
	return h, nil
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

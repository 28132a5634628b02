package mapping

import (
	"crypto/sha256"
	"encoding/hex"
)

// LogID is how an id (anonymousId, userId, groupId) appears in logs and in
// error messages that reach them: "id:" and the first 12 hex digits of its
// SHA-256, never the id itself. The same id always gives the same value, so
// log lines can still be correlated, and an operator holding an id finds
// its lines with LogID(id).
func LogID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "id:" + hex.EncodeToString(sum[:6])
}

// LogIDs is LogID of each id.
func LogIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = LogID(id)
	}
	return out
}

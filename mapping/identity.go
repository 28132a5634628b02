package mapping

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// maxProofLength bounds what context.prechat fields are read: longer values
// count as absent.
const maxProofLength = 8192

// ProofResult is the outcome of checking an event's identity proof; it is
// the result label of prechat_identity_proofs_total.
type ProofResult string

// Proof results.
const (
	// ProofNone: the event carries no proof (or no userId and no proof).
	ProofNone ProofResult = "none"
	// ProofValid: a proof for the event's userId verified.
	ProofValid ProofResult = "valid"
	// ProofInvalid: a proof that does not verify (forged, malformed, wrong
	// algorithm or key, wrong issuer or audience), or a proof on an event
	// without a userId.
	ProofInvalid ProofResult = "invalid"
	// ProofExpired: an identity token whose exp (or nbf) excludes the
	// record time.
	ProofExpired ProofResult = "expired"
	// ProofWrongUser: a correctly signed identity token for another user.
	ProofWrongUser ProofResult = "wrong_user"
	// ProofUnconfigured: a proof of a kind this deployment has no secret or
	// key for.
	ProofUnconfigured ProofResult = "unconfigured"
)

// Verifier checks identity proofs: that the site's server vouches for an
// event's userId. A nil Verifier verifies nothing.
type Verifier struct {
	// Secrets are the HMAC secrets (IDENTITY_SECRET); a userHash made with
	// any of them verifies, so a secret can be rotated.
	Secrets [][]byte
	// Keys verify identity tokens (IDENTITY_JWT_KEYS).
	Keys []JWTKey
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be in the token's aud.
	Audience string
}

// UserHash is the userHash proof of a userId under secret: the lowercase
// hex HMAC-SHA256 of the userId.
func UserHash(secret []byte, userID string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(userID))
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify checks e's proofs for its userId as of at (the record time, so
// that replays decide the same). Either proof suffices; when neither
// verifies, the identity token's outcome is reported before the userHash's.
func (v *Verifier) Verify(e *Event, at time.Time) ProofResult {
	p := e.Prechat
	if p.UserHash == "" && p.IdentityToken == "" {
		return ProofNone
	}
	if e.UserID == "" {
		return ProofInvalid
	}
	result := ProofNone
	if p.IdentityToken != "" {
		if v == nil || len(v.Keys) == 0 {
			result = ProofUnconfigured
		} else if result = v.verifyToken(p.IdentityToken, e.UserID, at); result == ProofValid {
			return result
		}
	}
	if p.UserHash != "" {
		r := ProofUnconfigured
		if v != nil && len(v.Secrets) > 0 {
			r = v.verifyHash(p.UserHash, e.UserID)
		}
		if r == ProofValid || result == ProofNone || result == ProofUnconfigured {
			result = r
		}
	}
	return result
}

func (v *Verifier) verifyHash(hash, userID string) ProofResult {
	got, err := hex.DecodeString(hash)
	if err != nil || len(got) != sha256.Size || hex.EncodeToString(got) != hash {
		return ProofInvalid
	}
	for _, s := range v.Secrets {
		mac := hmac.New(sha256.New, s)
		mac.Write([]byte(userID))
		if hmac.Equal(mac.Sum(nil), got) {
			return ProofValid
		}
	}
	return ProofInvalid
}

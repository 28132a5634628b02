package mappingtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// JWTKeyID is the kid of the key the tests' identity tokens are signed
// with (IdentityToken) and Policy verifies them with.
const JWTKeyID = "mappingtest-es256"

// jwtKey signs IdentityToken; a new one each test process.
var jwtKey = func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()

// IdentityToken is an ES256 identity token for userID, as a site's server
// mints for Salesforce Messaging User Verification: sub, iat, exp.
func IdentityToken(userID string, exp time.Time) string {
	return SignJWT("ES256", JWTKeyID, jwtKey, map[string]any{"sub": userID, "iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix()})
}

// JWKS is the public key of IdentityToken as a JWKS document, the form of
// an IDENTITY_JWT_KEYS file.
func JWKS() []byte {
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	return fmt.Appendf(nil, `{"keys":[{"kty":"EC","crv":"P-256","use":"sig","kid":%q,"x":%q,"y":%q}]}`,
		JWTKeyID, b64(jwtKey.X.FillBytes(make([]byte, 32))), b64(jwtKey.Y.FillBytes(make([]byte, 32))))
}

// SignJWT makes a compact JWS with the given header alg and kid over
// claims, signed with an RSA key (PKCS #1 v1.5) or an ECDSA key (r||s), as
// a site's server would. alg is written as given, so tests can also make
// tokens whose header lies about the signature.
func SignJWT(alg, kid string, key crypto.Signer, claims map[string]any) string {
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	enc := func(v any) string {
		raw, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	input := enc(header) + "." + enc(claims)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:]); err != nil {
			panic(err)
		}
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			panic(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	default:
		panic(fmt.Sprintf("SignJWT: a %T key", key))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// GroupMembers is a company of n live visitors: for each, member-i, whose
// verified user user-i joins groupID, and its conversation start, all at at.
// A verified change to groupID then refreshes n documents.
func GroupMembers(n int, groupID string, at time.Time) [][]byte {
	ts := at.UTC().Format(time.RFC3339Nano)
	raws := make([][]byte, 0, 2*n)
	for i := range n {
		a, u := fmt.Sprintf("member-%d", i), fmt.Sprintf("user-%d", i)
		raws = append(raws,
			[]byte(`{"type":"group","messageId":"g-`+a+`","anonymousId":"`+a+`","userId":"`+u+`","groupId":"`+groupID+`","context":`+Proof(u)+`,"timestamp":"`+ts+`"}`),
			[]byte(`{"type":"track","messageId":"c-`+a+`","anonymousId":"`+a+`","event":"Live Chat Conversation Started","timestamp":"`+ts+`"}`))
	}
	return raws
}

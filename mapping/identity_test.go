package mapping_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
)

var (
	testRSAKey, _  = rsa.GenerateKey(rand.Reader, 2048)
	testECKey, _   = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherRSAKey, _ = rsa.GenerateKey(rand.Reader, 2048)
)

func signJWT(t *testing.T, alg, kid string, key crypto.Signer, claims map[string]any) string {
	t.Helper()
	return mappingtest.SignJWT(alg, kid, key, claims)
}

// hs256 forges a token with the HMAC algorithm keyed by the public key's
// PEM: the classic confusion attack on verifiers that let the token choose.
func hs256(t *testing.T, claims map[string]any) string {
	t.Helper()
	der, _ := x509.MarshalPKIXPublicKey(&testRSAKey.PublicKey)
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func withProof(userID, field, value string) *mapping.Event {
	return &mapping.Event{Type: mapping.TypeIdentify, MessageID: "m", AnonymousID: "a", UserID: userID,
		Prechat: map[string]mapping.PrechatContext{
			"userHash":      {UserHash: value},
			"identityToken": {IdentityToken: value},
		}[field]}
}

func TestVerifyUserHash(t *testing.T) {
	t.Parallel()
	secret, rotated := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	v := &mapping.Verifier{Secrets: [][]byte{secret, rotated}}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		event  *mapping.Event
		v      *mapping.Verifier
		result mapping.ProofResult
	}{
		{"valid under the first secret", withProof("victim-42", "userHash", mapping.UserHash(secret, "victim-42")), v, mapping.ProofValid},
		{"valid under a second secret (rotation)", withProof("victim-42", "userHash", mapping.UserHash(rotated, "victim-42")), v, mapping.ProofValid},
		{"another user's hash", withProof("victim-42", "userHash", mapping.UserHash(secret, "attacker")), v, mapping.ProofInvalid},
		{"made with an unknown secret", withProof("victim-42", "userHash", mapping.UserHash([]byte("guess"), "victim-42")), v, mapping.ProofInvalid},
		{"uppercase hex is not the documented form", withProof("victim-42", "userHash", strings.ToUpper(mapping.UserHash(secret, "victim-42"))), v, mapping.ProofInvalid},
		{"truncated", withProof("victim-42", "userHash", mapping.UserHash(secret, "victim-42")[:40]), v, mapping.ProofInvalid},
		{"not hex", withProof("victim-42", "userHash", strings.Repeat("zz", 32)), v, mapping.ProofInvalid},
		{"a proof without a userId", withProof("", "userHash", mapping.UserHash(secret, "")), v, mapping.ProofInvalid},
		{"no secret configured", withProof("victim-42", "userHash", mapping.UserHash(secret, "victim-42")), nil, mapping.ProofUnconfigured},
		{"no proof", withProof("victim-42", "userHash", ""), v, mapping.ProofNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.v.Verify(tt.event, at); got != tt.result {
				t.Errorf("Verify = %s, want %s", got, tt.result)
			}
		})
	}
}

func TestVerifyIdentityToken(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	exp := at.Add(10 * time.Minute).Unix()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"sub": "victim-42", "exp": exp, "iat": at.Unix(), "iss": "https://www.example.com", "aud": []string{"prechat", "salesforce"}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	keys := []mapping.JWTKey{{ID: "rsa-1", Key: &testRSAKey.PublicKey}, {ID: "ec-1", Key: &testECKey.PublicKey}}
	v := &mapping.Verifier{Keys: keys, Issuer: "https://www.example.com", Audience: "prechat"}
	valid := signJWT(t, "RS256", "rsa-1", testRSAKey, claims(nil))
	parts := strings.Split(valid, ".")
	tampered, _ := json.Marshal(claims(func(c map[string]any) { c["sub"] = "attacker" }))
	tests := []struct {
		name   string
		token  string
		v      *mapping.Verifier
		result mapping.ProofResult
	}{
		{"RS256", valid, v, mapping.ProofValid},
		{"ES256", signJWT(t, "ES256", "ec-1", testECKey, claims(nil)), v, mapping.ProofValid},
		{"no kid tries every key", signJWT(t, "ES256", "", testECKey, claims(nil)), v, mapping.ProofValid},
		{"aud as a string", signJWT(t, "RS256", "rsa-1", testRSAKey, claims(func(c map[string]any) { c["aud"] = "prechat" })), v, mapping.ProofValid},
		{"within the leeway after exp", signJWT(t, "RS256", "rsa-1", testRSAKey, claims(func(c map[string]any) { c["exp"] = at.Add(-30 * time.Second).Unix() })), v, mapping.ProofValid},
		{"expired", signJWT(t, "RS256", "rsa-1", testRSAKey, claims(func(c map[string]any) { c["exp"] = at.Add(-time.Hour).Unix() })), v, mapping.ProofExpired},
		{"not yet valid", signJWT(t, "RS256", "rsa-1", testRSAKey, claims(func(c map[string]any) { c["nbf"] = at.Add(time.Hour).Unix() })), v, mapping.ProofExpired},
		{"without exp", signJWT(t, "RS256", "rsa-1", testRSAKey, claims(func(c map[string]any) { delete(c, "exp") })), v, mapping.ProofInvalid},
		{"another user's token", signJWT(t, "RS256", "rsa-1", testRSAKey, claims(func(c map[string]any) { c["sub"] = "attacker" })), v, mapping.ProofWrongUser},
		{"signed by another key", signJWT(t, "RS256", "rsa-1", otherRSAKey, claims(nil)), v, mapping.ProofInvalid},
		{"payload swapped after signing", parts[0] + "." + base64.RawURLEncoding.EncodeToString(tampered) + "." + parts[2], v, mapping.ProofInvalid},
		{"alg none", parts[0][:0] + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".", v, mapping.ProofInvalid},
		{"HS256 keyed with the public key", hs256(t, claims(nil)), v, mapping.ProofInvalid},
		{"ES256 header on an RSA signature", signJWT(t, "ES256", "rsa-1", testRSAKey, claims(nil)), v, mapping.ProofInvalid},
		{"kid of another key", signJWT(t, "RS256", "ec-1", testRSAKey, claims(nil)), v, mapping.ProofInvalid},
		{"wrong issuer", signJWT(t, "RS256", "rsa-1", testRSAKey, claims(func(c map[string]any) { c["iss"] = "https://evil.example" })), v, mapping.ProofInvalid},
		{"wrong audience", signJWT(t, "RS256", "rsa-1", testRSAKey, claims(func(c map[string]any) { c["aud"] = "someone-else" })), v, mapping.ProofInvalid},
		{"sub as a number", signJWT(t, "RS256", "rsa-1", testRSAKey, claims(func(c map[string]any) { c["sub"] = 42 })), v, mapping.ProofInvalid},
		{"not a JWS", "abc.def", v, mapping.ProofInvalid},
		{"no keys configured", valid, &mapping.Verifier{Secrets: [][]byte{[]byte("x")}}, mapping.ProofUnconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.v.Verify(withProof("victim-42", "identityToken", tt.token), at); got != tt.result {
				t.Errorf("Verify = %s, want %s", got, tt.result)
			}
		})
	}
}

// TestProofFromContext: proofs are read from context.prechat of the raw
// event, and a malformed context.prechat never makes the event invalid.
func TestProofFromContext(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	v := &mapping.Verifier{Secrets: [][]byte{secret}}
	hash := mapping.UserHash(secret, "u")
	for raw, want := range map[string]mapping.ProofResult{
		`{"type":"identify","messageId":"m","userId":"u","context":{"prechat":{"userHash":"` + hash + `"}}}`: mapping.ProofValid,
		`{"type":"identify","messageId":"m","userId":"u","context":{"prechat":{"userHash":42}}}`:             mapping.ProofNone,
		`{"type":"identify","messageId":"m","userId":"u","context":{"prechat":"` + hash + `"}}`:              mapping.ProofNone,
		`{"type":"identify","messageId":"m","userId":"u","context":{"library":{"name":"prechat"}}}`:          mapping.ProofNone,
		`{"type":"identify","messageId":"m","userId":"v","context":{"prechat":{"userHash":"` + hash + `"}}}`: mapping.ProofInvalid,
	} {
		e, err := mapping.Decode([]byte(raw), "")
		if err != nil {
			t.Fatalf("Decode %s: %v", raw, err)
		}
		if got := v.Verify(&e, time.Now()); got != want {
			t.Errorf("%s: Verify = %s, want %s", raw, got, want)
		}
	}
}

func TestParseJWTKeys(t *testing.T) {
	t.Parallel()
	der, _ := x509.MarshalPKIXPublicKey(&testRSAKey.PublicKey)
	ecDer, _ := x509.MarshalPKIXPublicKey(&testECKey.PublicKey)
	pemKeys := append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDer})...)
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"r","use":"sig","n":%q,"e":%q},{"kty":"EC","kid":"e","crv":"P-256","x":%q,"y":%q}]}`,
		b64(testRSAKey.N.Bytes()), b64(big.NewInt(int64(testRSAKey.E)).Bytes()), b64(testECKey.X.FillBytes(make([]byte, 32))), b64(testECKey.Y.FillBytes(make([]byte, 32))))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDer, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	privDer, _ := x509.MarshalPKCS8PrivateKey(testRSAKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384Der, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	tests := []struct {
		name    string
		data    string
		keys    int
		wantErr string
	}{
		{"PEM public keys", string(pemKeys), 2, ""},
		{"JWKS", jwks, 2, ""},
		{"JWKS private key", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}]}`, 0, "private key"},
		{"PEM private key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDer})), 0, "never a private key"},
		{"RSA key too small", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDer})), 0, "1024 bits"},
		{"P-384", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p384Der})), 0, "P-256"},
		{"empty", "", 0, "no keys"},
		{"JWKS point off the curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}`, 0, "not a point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := mapping.ParseJWTKeys([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(keys) != tt.keys {
				t.Fatalf("%d keys, err %v; want %d keys", len(keys), err, tt.keys)
			}
			// The parsed keys verify a token their private halves signed.
			v := &mapping.Verifier{Keys: keys}
			token := signJWT(t, "ES256", "e", testECKey, map[string]any{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
			if got := v.Verify(withProof("u", "identityToken", token), time.Now()); got != mapping.ProofValid {
				t.Errorf("a token signed by the parsed EC key: %s", got)
			}
		})
	}
}

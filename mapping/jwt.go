package mapping

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// JWTLeeway is the clock skew allowed around an identity token's exp and nbf.
const JWTLeeway = time.Minute

// JWTKey is a public key that verifies identity tokens: an RSA key (RS256)
// or an ECDSA P-256 key (ES256).
type JWTKey struct {
	// ID is the JWKS kid; a token naming a kid is checked only against keys
	// with that ID or without one (keys from PEM have none).
	ID string
	// Key is an *rsa.PublicKey or an *ecdsa.PublicKey on P-256.
	Key crypto.PublicKey
}

// ParseJWTKeys reads identity-token keys from a JWKS document
// ({"keys":[…]}, RSA and EC P-256 keys) or from PEM blocks (PUBLIC KEY,
// RSA PUBLIC KEY or CERTIFICATE). Keys of other types, and private keys,
// are refused with an error that names them.
func ParseJWTKeys(data []byte) ([]JWTKey, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		return parseJWKS(data)
	}
	var keys []JWTKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("PEM block %d is a %q; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never a private key)", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if err := usableKey(key); err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		keys = append(keys, JWTKey{Key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys: want a JWKS document or PEM public keys")
	}
	return keys, nil
}

func usableKey(key any) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits; want at least 2048", k.N.BitLen())
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("ECDSA key on %s; want P-256 (ES256)", k.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("a %T key; want RSA (RS256) or ECDSA P-256 (ES256)", key)
}

func parseJWKS(data []byte) ([]JWTKey, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, Use, Alg, Crv string
			N, E, X, Y, D           string
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	b64 := func(s string) (*big.Int, error) {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil || len(raw) == 0 {
			return nil, errors.New("bad base64url number")
		}
		return new(big.Int).SetBytes(raw), nil
	}
	var keys []JWTKey
	for i, k := range set.Keys {
		name := fmt.Sprintf("JWKS key %d (kid %q)", i, k.Kid)
		if k.D != "" {
			return nil, fmt.Errorf("%s is a private key: publish only public keys", name)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var key any
		switch k.Kty {
		case "RSA":
			n, err1 := b64(k.N)
			e, err2 := b64(k.E)
			if err := errors.Join(err1, err2); err != nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 {
				return nil, fmt.Errorf("%s: bad n or e", name)
			}
			key = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			if k.Crv != "P-256" {
				return nil, fmt.Errorf("%s: curve %q; want P-256", name, k.Crv)
			}
			x, err1 := b64(k.X)
			y, err2 := b64(k.Y)
			if errors.Join(err1, err2) != nil {
				return nil, fmt.Errorf("%s: bad x or y", name)
			}
			pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
			if _, err := pub.ECDH(); err != nil {
				return nil, fmt.Errorf("%s: not a point on P-256", name)
			}
			key = pub
		default:
			return nil, fmt.Errorf("%s: kty %q; want RSA or EC", name, k.Kty)
		}
		if err := usableKey(key); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		keys = append(keys, JWTKey{ID: k.Kid, Key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no signing keys")
	}
	return keys, nil
}

// verifyToken checks a compact JWS: RS256 or ES256 only (never none or an
// HMAC algorithm, so a public key can never serve as an HMAC secret), signed
// by one of the keys, exp present and after at, nbf (if any) not after at,
// iss and aud as configured, and sub equal to userID.
func (v *Verifier) verifyToken(token, userID string, at time.Time) ProofResult {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ProofInvalid
	}
	var header struct {
		Alg, Kid string
		Crit     json.RawMessage
	}
	if decodeSegment(parts[0], &header) != nil || header.Crit != nil {
		return ProofInvalid
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return ProofInvalid
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	signed := false
	for _, k := range v.Keys {
		if header.Kid != "" && k.ID != "" && k.ID != header.Kid {
			continue
		}
		if verifySignature(header.Alg, k.Key, digest[:], sig) {
			signed = true
			break
		}
	}
	if !signed {
		return ProofInvalid
	}
	var claims struct {
		Sub      *string
		Iss      string
		Aud      json.RawMessage
		Exp, Nbf *json.Number
	}
	if decodeSegment(parts[1], &claims) != nil || claims.Sub == nil || claims.Exp == nil {
		return ProofInvalid
	}
	if v.Issuer != "" && claims.Iss != v.Issuer {
		return ProofInvalid
	}
	if v.Audience != "" && !hasAudience(claims.Aud, v.Audience) {
		return ProofInvalid
	}
	exp, err := claims.Exp.Float64()
	if err != nil {
		return ProofInvalid
	}
	if at.After(time.Unix(int64(exp), 0).Add(JWTLeeway)) {
		return ProofExpired
	}
	if claims.Nbf != nil {
		nbf, err := claims.Nbf.Float64()
		if err != nil {
			return ProofInvalid
		}
		if at.Before(time.Unix(int64(nbf), 0).Add(-JWTLeeway)) {
			return ProofExpired
		}
	}
	if *claims.Sub != userID {
		return ProofWrongUser
	}
	return ProofValid
}

func verifySignature(alg string, key crypto.PublicKey, digest, sig []byte) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" && rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		if alg != "ES256" || len(sig) != 64 {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, digest, r, s)
	}
	return false
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}

func hasAudience(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return false
	}
	for _, a := range many {
		if a == want {
			return true
		}
	}
	return false
}

package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/prechat/prechat/mapping"
)

// minIdentitySecret is the shortest IDENTITY_SECRET accepted: 32
// characters, such as `openssl rand -hex 16`.
const minIdentitySecret = 32

// validateIdentity checks what the consumer admits events under.
func (c *Config) validateIdentity() error {
	if err := c.validateSecrets(); err != nil {
		return err
	}
	if c.IdentityJWTKeys == "" && (c.IdentityJWTIssuer != "" || c.IdentityJWTAudience != "") {
		return errors.New("IDENTITY_JWT_KEYS: required when IDENTITY_JWT_ISSUER or IDENTITY_JWT_AUDIENCE is set")
	}
	if c.IdentityJWTKeys != "" {
		if _, err := c.jwtKeys(); err != nil {
			return err
		}
	}
	switch {
	case c.EventTimePast <= 0:
		return fmt.Errorf("EVENT_TIME_PAST: %s must be positive", c.EventTimePast)
	case c.EventTimeFuture <= 0:
		return fmt.Errorf("EVENT_TIME_FUTURE: %s must be positive", c.EventTimeFuture)
	}
	return nil
}

func (c *Config) validateSecrets() error {
	for _, s := range c.IdentitySecrets {
		if len(strings.TrimSpace(s)) < minIdentitySecret {
			return fmt.Errorf("IDENTITY_SECRET: each secret must be at least %d characters (openssl rand -hex 32 makes one)", minIdentitySecret)
		}
	}
	return nil
}

// validateServerKeys checks SERVER_WRITE_KEYS against the ingest's other
// settings.
func (c *Config) validateServerKeys() error {
	for _, k := range c.ServerWriteKeys {
		switch {
		case strings.TrimSpace(k) == "":
			return errors.New("SERVER_WRITE_KEYS: holds an empty key")
		case slices.Contains(c.WriteKeys, k):
			return errors.New("SERVER_WRITE_KEYS: a key is also in WRITE_KEYS; browser write keys are public, server ones must not be")
		}
	}
	if len(c.ServerWriteKeys) > 0 && len(c.IdentitySecrets) == 0 {
		return errors.New("SERVER_WRITE_KEYS: needs IDENTITY_SECRET, which the ingest signs server events' userIds with")
	}
	return c.validateSecrets()
}

func (c *Config) jwtKeys() ([]mapping.JWTKey, error) {
	data, err := os.ReadFile(c.IdentityJWTKeys)
	if err != nil {
		return nil, fmt.Errorf("IDENTITY_JWT_KEYS: %w", err)
	}
	keys, err := mapping.ParseJWTKeys(data)
	if err != nil {
		return nil, fmt.Errorf("IDENTITY_JWT_KEYS: %s: %w", c.IdentityJWTKeys, err)
	}
	return keys, nil
}

// policy is what the consumer and replay admit events under (see
// mapping.Policy): the time window and the identity verifier.
func (c *Config) policy() (*mapping.Policy, error) {
	p := &mapping.Policy{Window: mapping.Window{Past: c.EventTimePast, Future: c.EventTimeFuture}}
	v := &mapping.Verifier{Issuer: c.IdentityJWTIssuer, Audience: c.IdentityJWTAudience}
	for _, s := range c.IdentitySecrets {
		v.Secrets = append(v.Secrets, []byte(strings.TrimSpace(s)))
	}
	if c.IdentityJWTKeys != "" {
		keys, err := c.jwtKeys()
		if err != nil {
			return nil, err
		}
		v.Keys = keys
	}
	if len(v.Secrets) > 0 || len(v.Keys) > 0 {
		p.Verifier = v
	}
	return p, nil
}

// signingSecret is the secret the ingest signs server write keys' events
// with: the first IDENTITY_SECRET.
func (c *Config) signingSecret() []byte {
	if len(c.IdentitySecrets) == 0 {
		return nil
	}
	return []byte(strings.TrimSpace(c.IdentitySecrets[0]))
}

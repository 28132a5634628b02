package main

import (
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

// TestPin: VERSION names one version of golang.org/x/vulndb with its hash.
func TestPin(t *testing.T) {
	m, err := parsePin(pin)
	if err != nil {
		t.Fatal(err)
	}
	if m.Path != "golang.org/x/vulndb" || !module.IsPseudoVersion(m.Version) {
		t.Errorf("VERSION pins %s@%s, want a pseudo-version of golang.org/x/vulndb", m.Path, m.Version)
	}
	for _, bad := range []string{"", "golang.org/x/vulndb v0.0.0-20261105234957-e22db6528018", "golang.org/x/vulndb v1 sha256:x"} {
		if _, err := parsePin(bad); err == nil {
			t.Errorf("parsePin(%q) accepted it", bad)
		}
	}
}

// TestDownloadRefusesOtherChecksum: a snapshot whose hash is not the
// pinned one is not used (the module comes from the module cache or the
// proxy, as in scripts/vulncheck).
func TestDownloadRefusesOtherChecksum(t *testing.T) {
	m, err := parsePin(pin)
	if err != nil {
		t.Fatal(err)
	}
	dir, snap, err := download(m)
	if err != nil {
		t.Fatalf("the pinned snapshot: %v", err)
	}
	if want, _ := module.PseudoVersionTime(m.Version); !snap.Equal(want) || dir == "" {
		t.Errorf("download: dir %q, time %v; want the module's directory and %v", dir, snap, want)
	}
	m.Sum = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	if _, _, err := download(m); err == nil || !strings.Contains(err.Error(), "VERSION pins h1:AAAA") {
		t.Errorf("download with another hash: %v, want a refusal", err)
	}
}

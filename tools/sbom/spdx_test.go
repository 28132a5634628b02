package main

import (
	"encoding/json"
	"runtime/debug"
	"slices"
	"testing"
	"time"
)

// buildInfo is what `go version -m` prints for a binary with two modules,
// one of them replaced (less the go line, which ParseBuildInfo leaves to
// the reader of the binary).
const buildInfo = "path\texample.com/app/cmd/app\n" +
	"mod\texample.com/app\t(devel)\t\n" +
	"dep\texample.com/a\tv1.2.3\th1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\n" +
	"dep\texample.com/b\tv0.1.0\t\n" +
	"=>\texample.com/fork/b\tv0.1.1\th1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb=\n" +
	"build\tCGO_ENABLED=0\n"

func parse(t *testing.T) *debug.BuildInfo {
	t.Helper()
	info, err := debug.ParseBuildInfo(buildInfo)
	if err != nil {
		t.Fatal(err)
	}
	info.GoVersion = "go1.27.3"
	return info
}

func TestBuild(t *testing.T) {
	created := time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC)
	doc := Build(parse(t), Image{Version: "1.0.0", Revision: "abc123"}, created)

	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2026-11-05T12:00:00Z" || doc.Name != "example.com/app 1.0.0" {
		t.Errorf("header: %+v", doc)
	}
	type pkg struct{ name, version, purl string }
	var got []pkg
	for _, p := range doc.Packages {
		got = append(got, pkg{p.Name, p.VersionInfo, p.ExternalRefs[0].ReferenceLocator})
	}
	want := []pkg{
		{"example.com/app", "1.0.0", "pkg:golang/example.com/app@1.0.0"},
		{"stdlib", "go1.27.3", "pkg:golang/stdlib@go1.27.3"},
		{"example.com/a", "v1.2.3", "pkg:golang/example.com/a@v1.2.3"},
		// A replaced module is listed as what was built: the replacement.
		{"example.com/fork/b", "v0.1.1", "pkg:golang/example.com/fork/b@v0.1.1"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("packages:\n got %v\nwant %v", got, want)
	}
	if m := doc.Packages[0]; m.DownloadLocation != "git+https://example.com/app@abc123" || m.SourceInfo != "built from revision abc123" {
		t.Errorf("main package: %+v", m)
	}
	if c := doc.Packages[3].Comment; c != "replaces example.com/b v0.1.0; go.sum h1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb=" {
		t.Errorf("replacement's comment %q", c)
	}
	rels := map[string]int{}
	for _, r := range doc.Relationships {
		rels[r.SPDXElementID+" "+r.RelationshipType]++
	}
	if rels["SPDXRef-DOCUMENT DESCRIBES"] != 1 || rels["SPDXRef-Package-main DEPENDS_ON"] != 3 {
		t.Errorf("relationships %v", rels)
	}
	ids := map[string]bool{}
	for _, p := range doc.Packages {
		if ids[p.SPDXID] || idUnsafe.MatchString(p.SPDXID) {
			t.Errorf("SPDXID %q repeated or not [A-Za-z0-9.-]", p.SPDXID)
		}
		ids[p.SPDXID] = true
	}

	// The same build gives the same document; another revision another namespace.
	again, _ := json.Marshal(Build(parse(t), Image{Version: "1.0.0", Revision: "abc123"}, created))
	first, _ := json.Marshal(doc)
	if string(again) != string(first) {
		t.Error("two documents of the same build differ")
	}
	if other := Build(parse(t), Image{Version: "1.0.0", Revision: "def456"}, created); other.DocumentNamespace == doc.DocumentNamespace {
		t.Error("two revisions share a document namespace")
	}
	// Without an image version, the main module's own.
	if v := Build(parse(t), Image{}, created).Packages[0].VersionInfo; v != "(devel)" {
		t.Errorf("version without VERSION: %q", v)
	}
}

func TestCreationTime(t *testing.T) {
	if got, err := creationTime("1762344000"); err != nil || !got.Equal(time.Unix(1762344000, 0)) {
		t.Errorf("SOURCE_DATE_EPOCH=1762344000: %v %v", got, err)
	}
	if _, err := creationTime("yesterday"); err == nil {
		t.Error("SOURCE_DATE_EPOCH=yesterday accepted")
	}
	if got, err := creationTime(""); err != nil || time.Since(got) > time.Minute {
		t.Errorf("no SOURCE_DATE_EPOCH: %v %v", got, err)
	}
}

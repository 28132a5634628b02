package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/vuln/scan"
)

var snapshot = time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)

// build writes the database of testdata/osv to a new directory.
func build(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "db")
	st, err := Build(os.DirFS("testdata/osv"), out, snapshot)
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{Entries: 4, Modules: 2}) {
		t.Errorf("stats %+v, want 4 entries of 2 modules", st)
	}
	return out
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestBuildLayout: the indexes say which entries each module has and from
// which version on none applies, db.json carries the newest time, and the
// entries are copied byte for byte.
func TestBuildLayout(t *testing.T) {
	out := build(t)
	var meta dbMeta
	readJSON(t, filepath.Join(out, "index", "db.json"), &meta)
	if want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC); !meta.Modified.Equal(want) {
		t.Errorf("db.json modified %v, want the newest entry's %v", meta.Modified, want)
	}
	var modules []moduleMeta
	readJSON(t, filepath.Join(out, "index", "modules.json"), &modules)
	type vuln struct{ module, id, fixed string }
	var got []vuln
	for _, m := range modules {
		for _, v := range m.Vulns {
			got = append(got, vuln{m.Path, v.ID, v.Fixed})
		}
	}
	want := []vuln{
		{"example.com/unused", "GO-9999-0004", "0.0.0-20260101000000-abcdefabcdef"},
		{"stdlib", "GO-9999-0001", ""},
		{"stdlib", "GO-9999-0002", ""}, // fixed in 1.0.0, back in 1.1.0
		{"stdlib", "GO-9999-0003", "1.0.0"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("modules.json:\n got %v\nwant %v", got, want)
	}
	for _, id := range []string{"GO-9999-0001", "GO-9999-0002", "GO-9999-0003", "GO-9999-0004"} {
		src, _ := os.ReadFile(filepath.Join("testdata", "osv", id+".json"))
		dst, err := os.ReadFile(filepath.Join(out, "ID", id+".json"))
		if err != nil || !bytes.Equal(src, dst) {
			t.Errorf("ID/%s.json differs from the entry (%v)", id, err)
		}
	}
}

// TestBuildSnapshotTime: with entries that carry no time (as x/vulndb's
// data/osv does), db.json has the snapshot's.
func TestBuildSnapshotTime(t *testing.T) {
	src := t.TempDir()
	for _, id := range []string{"GO-9999-0001", "GO-9999-0004"} {
		b, _ := os.ReadFile(filepath.Join("testdata", "osv", id+".json"))
		os.WriteFile(filepath.Join(src, id+".json"), b, 0o644)
	}
	out := filepath.Join(t.TempDir(), "db")
	if _, err := Build(os.DirFS(src), out, snapshot); err != nil {
		t.Fatal(err)
	}
	var meta dbMeta
	readJSON(t, filepath.Join(out, "index", "db.json"), &meta)
	if !meta.Modified.Equal(snapshot) {
		t.Errorf("db.json modified %v, want the snapshot's %v", meta.Modified, snapshot)
	}
}

// message is the part of govulncheck's -format json output the tests read.
type message struct {
	Config *struct {
		DBLastModified *time.Time `json:"db_last_modified"`
	} `json:"config"`
	OSV *struct {
		ID string `json:"id"`
	} `json:"osv"`
	Finding *struct {
		OSV   string `json:"osv"`
		Trace []struct {
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

// govulncheck runs govulncheck v1.9.0 in process (the version that
// scripts/vulncheck runs) with -format json and returns its messages.
func govulncheck(t *testing.T, args ...string) []message {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := scan.Command(context.Background(), append([]string{"-format", "json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("govulncheck %v: %v\n%s", args, err, stderr.String())
	}
	var out []message
	dec := json.NewDecoder(bufio.NewReader(&stdout))
	for dec.More() {
		var m message
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("govulncheck's output: %v", err)
		}
		out = append(out, m)
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	var ids []string
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// TestGovulncheckReadsIt: govulncheck, on a program that calls
// strconv.Quote and strconv.Itoa, reports both as called and not
// FormatInt's entry, which is fixed; and it reads db.json's time.
func TestGovulncheckReadsIt(t *testing.T) {
	out := build(t)
	called := map[string]bool{}
	var dbModified *time.Time
	for _, m := range govulncheck(t, "-C", "testdata/app", "-db", "file://"+out, "./...") {
		if m.Config != nil {
			dbModified = m.Config.DBLastModified
		}
		if f := m.Finding; f != nil && len(f.Trace) > 0 && f.Trace[0].Function != "" {
			called[f.OSV] = true
		}
	}
	if dbModified == nil || !dbModified.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("govulncheck read db modified %v, want db.json's", dbModified)
	}
	if ids, want := sortedKeys(called), []string{"GO-9999-0001", "GO-9999-0002"}; !slices.Equal(ids, want) {
		t.Errorf("govulncheck reports %v called, want %v", ids, want)
	}
}

// TestGovulncheckQuery: govulncheck's query mode looks entries up through
// modules.json's fixed versions: stdlib at go1.27.3 has Quote's and Itoa's
// entries (Itoa's fixed in 1.0.0 but back in 1.1.0, which an index entry
// "fixed": "1.0.0" would hide) and not FormatInt's (fixed in 1.0.0).
func TestGovulncheckQuery(t *testing.T) {
	out := build(t)
	found := map[string]bool{}
	for _, m := range govulncheck(t, "-db", "file://"+out, "-mode", "query", "stdlib@v1.27.3") {
		if m.OSV != nil {
			found[m.OSV.ID] = true
		}
	}
	if ids, want := sortedKeys(found), []string{"GO-9999-0001", "GO-9999-0002"}; !slices.Equal(ids, want) {
		t.Errorf("govulncheck -mode query stdlib@v1.27.3 finds %v, want %v", ids, want)
	}
}

// TestBuildRefuses: an entry whose file name is not its id, an entry that
// is not JSON, a source without entries and a database directory that
// already holds files are errors naming what is wrong.
func TestBuildRefuses(t *testing.T) {
	entry, err := os.ReadFile("testdata/osv/GO-9999-0001.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		out   func(t *testing.T) string
		want  string
	}{
		{"misnamed", map[string]string{"GO-9999-0009.json": string(entry)}, nil, `GO-9999-0009.json has id "GO-9999-0001"`},
		{"not JSON", map[string]string{"GO-9999-0001.json": "{"}, nil, "decode OSV entry GO-9999-0001.json"},
		{"no entries", map[string]string{"README.md": "x"}, nil, "no OSV entries"},
		{"used directory", map[string]string{"GO-9999-0001.json": string(entry)}, func(t *testing.T) string {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "stale"), nil, 0o644)
			return dir
		}, "is not empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			for name, body := range tc.files {
				os.WriteFile(filepath.Join(src, name), []byte(body), 0o644)
			}
			out := filepath.Join(t.TempDir(), "db")
			if tc.out != nil {
				out = tc.out(t)
			}
			_, err := Build(os.DirFS(src), out, snapshot)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestFixedVersion: the version from which on no version is affected, or
// "" whenever a later version could be.
func TestFixedVersion(t *testing.T) {
	semverRange := func(events ...event) osvRange { return osvRange{Type: "SEMVER", Events: events} }
	in, fx := func(v string) event { return event{Introduced: v} }, func(v string) event { return event{Fixed: v} }
	for _, tc := range []struct {
		name   string
		ranges []osvRange
		want   string
	}{
		{"no ranges", nil, ""},
		{"never fixed", []osvRange{semverRange(in("0"))}, ""},
		{"fixed", []osvRange{semverRange(in("0"), fx("1.2.3"))}, "1.2.3"},
		{"pseudo-version fix", []osvRange{semverRange(in("0"), fx("0.0.0-20260101000000-abcdefabcdef"))}, "0.0.0-20260101000000-abcdefabcdef"},
		{"fixed twice", []osvRange{semverRange(in("0"), fx("1.20.9"), in("1.21.0-0"), fx("1.21.2"))}, "1.21.2"},
		{"events out of order", []osvRange{semverRange(fx("1.21.2"), in("1.21.0-0"), fx("1.20.9"), in("0"))}, "1.21.2"},
		{"re-introduced", []osvRange{semverRange(in("0"), fx("1.0.0"), in("1.1.0"))}, ""},
		{"introduced where fixed", []osvRange{semverRange(in("0"), fx("1.0.0"), in("1.0.0"))}, ""},
		{"two ranges", []osvRange{semverRange(in("0"), fx("1.0.0")), semverRange(in("2.0.0"), fx("2.1.0"))}, "2.1.0"},
		{"one range open", []osvRange{semverRange(in("0"), fx("1.0.0")), semverRange(in("2.0.0"))}, ""},
		{"not semver", []osvRange{{Type: "GIT", Events: []event{in("0"), fx("abc")}}}, ""},
		{"bad version", []osvRange{semverRange(in("0"), fx("one"))}, ""},
		{"empty event", []osvRange{semverRange(in("0"), event{})}, ""},
	} {
		if got := fixedVersion(tc.ranges); got != tc.want {
			t.Errorf("%s: fixedVersion = %q, want %q", tc.name, got, tc.want)
		}
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// The v1 layout of a Go vulnerability database, as govulncheck's
// -db file://DIR reads it (golang.org/x/vuln/internal/client): index/db.json,
// index/modules.json and one ID/<id>.json per OSV entry.
const (
	indexDir = "index"
	idDir    = "ID"
)

// entry is the part of an OSV entry (golang.org/x/vulndb data/osv) that the
// indexes need; the entry itself is copied unchanged.
type entry struct {
	ID       string     `json:"id"`
	Modified time.Time  `json:"modified"`
	Affected []affected `json:"affected"`
}

type affected struct {
	Package struct {
		Name string `json:"name"` // the module path, or "stdlib" / "toolchain"
	} `json:"package"`
	Ranges []osvRange `json:"ranges"`
}

type osvRange struct {
	Type   string  `json:"type"`
	Events []event `json:"events"`
}

type event struct {
	Introduced string `json:"introduced,omitempty"`
	Fixed      string `json:"fixed,omitempty"`
}

// dbMeta is index/db.json.
type dbMeta struct {
	Modified time.Time `json:"modified"`
}

// moduleMeta is one element of index/modules.json.
type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	// Fixed: no version at or above it is affected; empty when there is no
	// such version. govulncheck fetches an entry only for module versions
	// below Fixed, so a Fixed that is too low hides a vulnerability.
	Fixed string `json:"fixed,omitempty"`
}

// Stats counts what Build wrote.
type Stats struct {
	Entries int // ID/<id>.json files
	Modules int // elements of index/modules.json
}

// Build reads the OSV entries <ID>.json at the top of src and writes the
// database to out, which must be empty or absent. index/db.json's modified
// time is the newest entry's modified time, or snapshot if that is later
// (the entries in x/vulndb's data/osv carry zero times: the published
// database takes them from git history, which a module zip lacks).
func Build(src fs.FS, out string, snapshot time.Time) (Stats, error) {
	if err := emptyDir(out); err != nil {
		return Stats{}, err
	}
	files, err := fs.ReadDir(src, ".")
	if err != nil {
		return Stats{}, fmt.Errorf("list the OSV entries: %w", err)
	}
	for _, d := range []string{indexDir, idDir} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return Stats{}, fmt.Errorf("create %s: %w", d, err)
		}
	}
	meta := dbMeta{Modified: snapshot.UTC()}
	modules := map[string]*moduleMeta{}
	var st Stats
	for _, f := range files {
		if f.IsDir() || path.Ext(f.Name()) != ".json" {
			continue
		}
		data, err := fs.ReadFile(src, f.Name())
		if err != nil {
			return st, fmt.Errorf("read OSV entry %s: %w", f.Name(), err)
		}
		var e entry
		if err := json.Unmarshal(data, &e); err != nil {
			return st, fmt.Errorf("decode OSV entry %s: %w", f.Name(), err)
		}
		if e.ID == "" || f.Name() != e.ID+".json" {
			return st, fmt.Errorf("OSV entry %s has id %q: want the file named <id>.json", f.Name(), e.ID)
		}
		if err := os.WriteFile(filepath.Join(out, idDir, f.Name()), data, 0o644); err != nil {
			return st, fmt.Errorf("write entry %s: %w", e.ID, err)
		}
		st.Entries++
		if e.Modified.After(meta.Modified) {
			meta.Modified = e.Modified.UTC()
		}
		for _, a := range e.Affected {
			m := modules[a.Package.Name]
			if m == nil {
				m = &moduleMeta{Path: a.Package.Name, Vulns: []moduleVuln{}}
				modules[a.Package.Name] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified, Fixed: fixedVersion(a.Ranges)})
		}
	}
	if st.Entries == 0 {
		return st, errors.New("no OSV entries (<ID>.json) found")
	}
	index := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		slices.SortFunc(m.Vulns, func(a, b moduleVuln) int { return strings.Compare(a.ID, b.ID) })
		index = append(index, m)
	}
	slices.SortFunc(index, func(a, b *moduleMeta) int { return strings.Compare(a.Path, b.Path) })
	st.Modules = len(index)
	if err := writeJSON(filepath.Join(out, indexDir, "modules.json"), index); err != nil {
		return st, err
	}
	return st, writeJSON(filepath.Join(out, indexDir, "db.json"), meta)
}

// fixedVersion returns the version from which on none is affected by the
// ranges, or "" if there is none: when there are no ranges (every version
// is affected), when a range's newest event is an introduction (affected
// from then on), or when a range or version is of a form it does not
// know (it errs towards "", which only makes govulncheck read the entry).
func fixedVersion(ranges []osvRange) string {
	if len(ranges) == 0 {
		return ""
	}
	var fixed string
	for _, r := range ranges {
		if r.Type != "SEMVER" || len(r.Events) == 0 {
			return ""
		}
		// The newest event, in version order; introduced "0" (the very
		// first version) is older than every other.
		var last *event
		for i, e := range r.Events {
			v := e.Fixed
			if e.Introduced != "" {
				v = e.Introduced
			}
			if v == "" || (e.Introduced != "" && e.Fixed != "") || (v != "0" && !semver.IsValid("v"+v)) {
				return ""
			}
			if last == nil {
				last = &r.Events[i]
				continue
			}
			if v == "0" {
				continue
			}
			lastV := last.Fixed + last.Introduced
			// On a tie the introduction counts as newer: "" is the safe side.
			if c := cmp(v, lastV); lastV == "0" || c > 0 || (c == 0 && e.Introduced != "") {
				last = &r.Events[i]
			}
		}
		if last.Fixed == "" {
			return ""
		}
		if fixed == "" || cmp(last.Fixed, fixed) > 0 {
			fixed = last.Fixed
		}
	}
	return fixed
}

// cmp compares two OSV SEMVER versions (no leading "v").
func cmp(a, b string) int { return semver.Compare("v"+a, "v"+b) }

func writeJSON(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// emptyDir creates dir, or checks that it is empty, so that entries of two
// snapshots never mix.
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the database directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read the database directory: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("the database directory %s is not empty", dir)
	}
	return nil
}

// Command vulndb writes an offline copy of the Go vulnerability database for
// govulncheck's -db file://DIR, from the golang.org/x/vulndb module that the
// Go module proxy serves: the version and checksum pinned in VERSION (one
// go.sum-style line, the only place the snapshot is named). It runs
// `go mod download -json` for that version, refuses a checksum other than
// the pinned one, and writes index/db.json, index/modules.json and
// ID/<id>.json from the module's data/osv entries (see Build).
//
//	go run . -out DIR     (from tools/vulndb; DIR must be empty or absent)
//
// scripts/vulncheck runs it and then govulncheck; docs/supply-chain.md
// says how to move the pin to a newer snapshot.
package main

import (
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

//go:embed VERSION
var pin string

func main() {
	out := flag.String("out", "", "directory to write the database to (created; must be empty)")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: vulndb -out DIR")
		os.Exit(2)
	}
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	mod, err := parsePin(pin)
	if err != nil {
		return err
	}
	dir, snapshot, err := download(mod)
	if err != nil {
		return err
	}
	st, err := Build(os.DirFS(filepath.Join(dir, "data", "osv")), out, snapshot)
	if err != nil {
		return fmt.Errorf("build the database from %s@%s: %w", mod.Path, mod.Version, err)
	}
	fmt.Printf("vulndb: %s@%s (%s): %d entries, %d modules in %s\n",
		mod.Path, mod.Version, snapshot.Format(time.DateOnly), st.Entries, st.Modules, out)
	return nil
}

// pinned is the snapshot: a module path, version and go.sum hash.
type pinned struct {
	Path, Version, Sum string
}

func parsePin(s string) (pinned, error) {
	f := strings.Fields(s)
	if len(f) != 3 || !strings.HasPrefix(f[2], "h1:") {
		return pinned{}, fmt.Errorf("VERSION: want one line \"golang.org/x/vulndb <version> h1:<hash>\", got %q", strings.TrimSpace(s))
	}
	return pinned{f[0], f[1], f[2]}, nil
}

// download fetches the module through the go command (its proxy, checksum
// database and module cache) and returns its directory and commit time.
func download(m pinned) (dir string, snapshot time.Time, err error) {
	cmd := exec.Command("go", "mod", "download", "-json", m.Path+"@"+m.Version)
	cmd.Dir = os.TempDir() // outside any module: nothing is added to a go.mod
	cmd.Stderr = os.Stderr
	b, runErr := cmd.Output()
	var res struct {
		Dir, Sum, Info, Error string
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return "", time.Time{}, fmt.Errorf("go mod download %s@%s: %v (output %q)", m.Path, m.Version, runErr, b)
	}
	if res.Error != "" || runErr != nil {
		return "", time.Time{}, fmt.Errorf("go mod download %s@%s: %v %s", m.Path, m.Version, runErr, res.Error)
	}
	if res.Sum != m.Sum {
		return "", time.Time{}, fmt.Errorf("%s@%s has checksum %s, VERSION pins %s", m.Path, m.Version, res.Sum, m.Sum)
	}
	info, err := os.ReadFile(res.Info)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read the module's .info: %w", err)
	}
	var meta struct{ Time time.Time }
	if err := json.Unmarshal(info, &meta); err != nil {
		return "", time.Time{}, fmt.Errorf("decode %s: %w", res.Info, err)
	}
	return res.Dir, meta.Time, nil
}

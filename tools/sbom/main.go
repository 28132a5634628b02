// Command sbom writes the software bill of materials of a Go binary as an
// SPDX 2.3 JSON document: the main module, every module linked into the
// binary with the version and go.sum hash the binary records, and the Go
// standard library at the toolchain's version. It reads what `go version -m`
// prints, from the binary itself (debug/buildinfo), so the list is what was
// built, not what go.mod allows.
//
//	sbom -o FILE BINARY
//
// The Dockerfile runs it on /processor in its build stage and copies the
// document into the image as /sbom.spdx.json (docs/image.md). The image's
// version and revision come from the environment, where the Dockerfile's
// build arguments put them: VERSION (default: the main module's version in
// the binary) and REVISION (the source's commit, if known). The creation
// time is SOURCE_DATE_EPOCH when set (reproducible builds), else now.
package main

import (
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	out := flag.String("o", "", "file to write the SPDX JSON to (default: standard output)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sbom [-o FILE] BINARY")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *out); err != nil {
		fmt.Fprintln(os.Stderr, "sbom:", err)
		os.Exit(1)
	}
}

func run(binary, out string) error {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("read the build information of %s: %w", binary, err)
	}
	created, err := creationTime(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	doc := Build(info, Image{Version: os.Getenv("VERSION"), Revision: os.Getenv("REVISION")}, created)
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the SPDX document: %w", err)
	}
	data = append(data, '\n')
	if out == "" {
		_, err = os.Stdout.Write(data)
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

// creationTime is SOURCE_DATE_EPOCH (seconds since 1970, as reproducible
// builds define it) when set, else the current time.
func creationTime(epoch string) (time.Time, error) {
	if epoch == "" {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	s, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: %w", epoch, err)
	}
	return time.Unix(s, 0).UTC(), nil
}

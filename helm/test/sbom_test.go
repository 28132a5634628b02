package helmtest_test

// The image's SBOM (/sbom.spdx.json, written by tools/sbom in the build
// stage) against sources independent of it: go list's view of what
// ./cmd/processor links, and go.mod's versions.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// spdxDocument is the part of an SPDX 2.3 JSON document the test reads.
type spdxDocument struct {
	SPDXVersion       string `json:"spdxVersion"`
	DataLicense       string `json:"dataLicense"`
	SPDXID            string `json:"SPDXID"`
	DocumentNamespace string `json:"documentNamespace"`
	CreationInfo      struct {
		Created  string   `json:"created"`
		Creators []string `json:"creators"`
	} `json:"creationInfo"`
	Packages []struct {
		Name             string `json:"name"`
		SPDXID           string `json:"SPDXID"`
		VersionInfo      string `json:"versionInfo"`
		DownloadLocation string `json:"downloadLocation"`
		ExternalRefs     []struct {
			ReferenceType    string `json:"referenceType"`
			ReferenceLocator string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
	Relationships []struct {
		SPDXElementID      string `json:"spdxElementId"`
		RelationshipType   string `json:"relationshipType"`
		RelatedSPDXElement string `json:"relatedSpdxElement"`
	} `json:"relationships"`
}

// TestImageSBOM: the SBOM describes the main module at the image's
// version and revision, and lists exactly the modules the processor links
// (go list -deps ./cmd/processor, for the image's platform and without
// cgo) at the versions go.mod requires, and the standard library at
// go.mod's toolchain; each package has its purl.
func TestImageSBOM(t *testing.T) {
	t.Parallel()
	img := image(t)
	data, err := os.ReadFile(filepath.Join(img.rootfs, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc spdxDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("sbom.spdx.json: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" ||
		!strings.HasPrefix(doc.DocumentNamespace, "https://") || doc.CreationInfo.Created == "" || len(doc.CreationInfo.Creators) == 0 {
		t.Errorf("not an SPDX 2.3 document header: %s %s %s %s %+v", doc.SPDXVersion, doc.DataLicense, doc.SPDXID, doc.DocumentNamespace, doc.CreationInfo)
	}

	root := repoRoot(t)
	required := goModRequires(t, filepath.Join(root, "go.mod"))
	linked := linkedModules(t)
	ids := map[string]string{} // SPDXID → name
	listed := map[string]bool{}
	var mainID string
	for _, p := range doc.Packages {
		ids[p.SPDXID] = p.Name
		purl := ""
		for _, r := range p.ExternalRefs {
			if r.ReferenceType == "purl" {
				purl = r.ReferenceLocator
			}
		}
		if want := "pkg:golang/" + p.Name + "@" + p.VersionInfo; purl != want {
			t.Errorf("%s: purl %q, want %q", p.Name, purl, want)
		}
		switch p.Name {
		case "github.com/prechat/prechat":
			mainID = p.SPDXID
			if p.VersionInfo != img.version || !strings.HasSuffix(p.DownloadLocation, "@"+img.revision) {
				t.Errorf("main module: version %q, download location %q; want %s at revision %s", p.VersionInfo, p.DownloadLocation, img.version, img.revision)
			}
		case "stdlib":
			if want := goModToolchain(t, filepath.Join(root, "go.mod")); p.VersionInfo != want {
				t.Errorf("stdlib %s, want go.mod's toolchain %s", p.VersionInfo, want)
			}
		default:
			listed[p.Name] = true
			if v, ok := required[p.Name]; !ok {
				t.Errorf("SBOM lists %s %s, which go.mod does not require", p.Name, p.VersionInfo)
			} else if p.VersionInfo != v {
				t.Errorf("SBOM lists %s %s, go.mod requires %s", p.Name, p.VersionInfo, v)
			}
			if !linked[p.Name] {
				t.Errorf("SBOM lists %s, which go list says the processor does not link", p.Name)
			}
		}
	}
	for m := range linked {
		if !listed[m] {
			t.Errorf("SBOM lacks %s %s, which the processor links", m, required[m])
		}
	}
	described, depends := false, map[string]bool{}
	for _, r := range doc.Relationships {
		switch {
		case r.SPDXElementID == "SPDXRef-DOCUMENT" && r.RelationshipType == "DESCRIBES" && r.RelatedSPDXElement == mainID:
			described = true
		case r.SPDXElementID == mainID && r.RelationshipType == "DEPENDS_ON":
			depends[ids[r.RelatedSPDXElement]] = true
		}
	}
	if mainID == "" || !described {
		t.Error("the SBOM does not describe github.com/prechat/prechat")
	}
	for name := range listed {
		if !depends[name] {
			t.Errorf("no DEPENDS_ON relationship from the main module to %s", name)
		}
	}
	t.Logf("SBOM: %d packages (%d modules linked by the processor), created %s", len(doc.Packages), len(linked), doc.CreationInfo.Created)
}

// goModRequires are a go.mod's require directives: module path → version.
func goModRequires(t *testing.T, gomod string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	line := regexp.MustCompile(`^(?:require\s+)?(\S+)\s+(v\S+)(?:\s*//.*)?$`)
	inBlock := false
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSpace(l)
		switch {
		case l == "require (":
			inBlock = true
		case inBlock && l == ")":
			inBlock = false
		case inBlock || strings.HasPrefix(l, "require "):
			if m := line.FindStringSubmatch(l); m != nil {
				out[m[1]] = m[2]
			}
		}
	}
	return out
}

// linkedModules are the modules, other than the main one, whose packages
// ./cmd/processor imports when built as the image builds it.
func linkedModules(t *testing.T) map[string]bool {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", `{{with .Module}}{{if not .Main}}{{.Path}}{{end}}{{end}}`, "./cmd/processor")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/processor: %v", err)
	}
	mods := map[string]bool{}
	for _, m := range strings.Fields(string(out)) {
		mods[m] = true
	}
	return mods
}

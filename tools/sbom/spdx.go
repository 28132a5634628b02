package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
	"time"
)

// Document is an SPDX 2.3 document in its JSON form (the fields this
// program writes; https://spdx.github.io/spdx-spec/v2.3/).
type Document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      CreationInfo   `json:"creationInfo"`
	Packages          []Package      `json:"packages"`
	Relationships     []Relationship `json:"relationships"`
}

// CreationInfo says when and by what a Document was written.
type CreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

// Package is one SPDX package: the main module, a dependency module or the
// Go standard library.
type Package struct {
	Name                  string        `json:"name"`
	SPDXID                string        `json:"SPDXID"`
	VersionInfo           string        `json:"versionInfo"`
	DownloadLocation      string        `json:"downloadLocation"`
	FilesAnalyzed         bool          `json:"filesAnalyzed"`
	LicenseConcluded      string        `json:"licenseConcluded"`
	LicenseDeclared       string        `json:"licenseDeclared"`
	CopyrightText         string        `json:"copyrightText"`
	PrimaryPackagePurpose string        `json:"primaryPackagePurpose,omitempty"`
	SourceInfo            string        `json:"sourceInfo,omitempty"`
	Comment               string        `json:"comment,omitempty"`
	ExternalRefs          []ExternalRef `json:"externalRefs,omitempty"`
}

// ExternalRef identifies a package outside the document: here its purl.
type ExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

// Relationship relates two elements of the document by their SPDXIDs.
type Relationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// Image is what the image build knows and the binary does not: the
// version it is published as and the source revision it was built from.
// Empty fields are left out (Version falls back to the main module's).
type Image struct {
	Version  string
	Revision string
}

// noAssertion is SPDX's "this document makes no claim about it".
const noAssertion = "NOASSERTION"

// Build describes the binary whose build information is info: the main
// module (DESCRIBES), each linked module and the standard library
// (DEPENDS_ON), in the order the binary lists them.
func Build(info *debug.BuildInfo, img Image, created time.Time) Document {
	version := img.Version
	if version == "" {
		version = info.Main.Version
	}
	main := Package{
		Name:                  info.Main.Path,
		SPDXID:                "SPDXRef-Package-main",
		VersionInfo:           version,
		DownloadLocation:      noAssertion,
		LicenseConcluded:      noAssertion,
		LicenseDeclared:       noAssertion,
		CopyrightText:         noAssertion,
		PrimaryPackagePurpose: "APPLICATION",
		Comment:               "main package " + info.Path + "; " + settings(info),
		ExternalRefs:          purl(info.Main.Path, version),
	}
	if img.Revision != "" {
		main.DownloadLocation = "git+https://" + info.Main.Path + "@" + img.Revision
		main.SourceInfo = "built from revision " + img.Revision
	}
	doc := Document{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        info.Main.Path + " " + version,
		DocumentNamespace: "https://" + info.Main.Path + "/spdx/" + version + "-" +
			fingerprint(info.String(), img.Version, img.Revision),
		CreationInfo: CreationInfo{
			Created:  created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: " + info.Main.Path + "/tools/sbom"},
		},
		Packages: []Package{main},
		Relationships: []Relationship{{
			SPDXElementID: "SPDXRef-DOCUMENT", RelationshipType: "DESCRIBES", RelatedSPDXElement: main.SPDXID,
		}},
	}
	add := func(p Package) {
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, Relationship{
			SPDXElementID: main.SPDXID, RelationshipType: "DEPENDS_ON", RelatedSPDXElement: p.SPDXID,
		})
	}
	add(Package{
		Name:                  "stdlib",
		SPDXID:                "SPDXRef-Package-stdlib",
		VersionInfo:           info.GoVersion,
		DownloadLocation:      noAssertion,
		LicenseConcluded:      noAssertion,
		LicenseDeclared:       "BSD-3-Clause",
		CopyrightText:         noAssertion,
		PrimaryPackagePurpose: "LIBRARY",
		Comment:               "the Go standard library and runtime, from the toolchain that built the binary",
		ExternalRefs:          purl("stdlib", info.GoVersion),
	})
	for i, dep := range info.Deps {
		m, comment := dep, "go.sum "+dep.Sum
		if dep.Replace != nil {
			m = dep.Replace
			comment = "replaces " + dep.Path + " " + dep.Version + "; go.sum " + m.Sum
		}
		add(Package{
			Name:                  m.Path,
			SPDXID:                fmt.Sprintf("SPDXRef-Package-%d-%s", i+1, idUnsafe.ReplaceAllString(m.Path, "-")),
			VersionInfo:           m.Version,
			DownloadLocation:      noAssertion,
			LicenseConcluded:      noAssertion,
			LicenseDeclared:       noAssertion,
			CopyrightText:         noAssertion,
			PrimaryPackagePurpose: "LIBRARY",
			Comment:               comment,
			ExternalRefs:          purl(m.Path, m.Version),
		})
	}
	return doc
}

// idUnsafe matches what an SPDXID may not contain.
var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// purl is the package URL of a Go module (or of the standard library).
func purl(path, version string) []ExternalRef {
	return []ExternalRef{{
		ReferenceCategory: "PACKAGE-MANAGER",
		ReferenceType:     "purl",
		ReferenceLocator:  "pkg:golang/" + path + "@" + version,
	}}
}

// settings is the binary's toolchain and build settings, one line.
func settings(info *debug.BuildInfo) string {
	parts := []string{"built with " + info.GoVersion}
	for _, s := range info.Settings {
		parts = append(parts, s.Key+"="+s.Value)
	}
	return strings.Join(parts, " ")
}

// fingerprint makes the document's namespace unique to what it describes
// and the same for the same build (the SPDX namespace must be unique).
func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

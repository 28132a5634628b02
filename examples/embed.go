// Package examples holds the example destination settings, embedded so that
// processor dev and the tests use the same file docs/configuration.md shows.
package examples

import _ "embed"

// SettingsJSON is settings.json: the mappings of Segment's own integration
// tests, with first and last name added, rendered for all three chat
// products (Legacy Chat, Embedded Service Chat, Messaging for Web).
//
//go:embed settings.json
var SettingsJSON []byte

// Package mapping holds Prechat's domain: Segment-spec events, the settings of
// Segment's "Salesforce Live Agent" destination, the last-writer-wins rule that
// merges traits, and the builder that turns a visitor's state into the
// pre-chat document the browser snippet applies before liveagent.init.
//
// The package is pure: it does no I/O, keeps no clock and imports only the
// standard library, so every rule here is tested with table tests over
// testdata/ files. Storage (persistence), consumption (pipeline) and HTTP
// (api) all speak in these types.
package mapping

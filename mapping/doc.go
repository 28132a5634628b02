// Package mapping holds Prechat's domain: Segment-spec events, the settings of
// Segment's "Salesforce Live Agent" destination, the last-writer-wins rule that
// merges traits, the builder that turns a visitor's state into the
// product-neutral pre-chat document, and its renderers for the three chat
// products (render.go): Legacy Chat's liveagent calls, Embedded Service
// Chat's embedded_svc settings and Messaging for Web's pre-chat fields.
//
// The package is pure: it does no I/O, keeps no clock and imports only the
// standard library, so every rule here is tested with table tests over
// testdata/ files. Storage (persistence), consumption (pipeline) and HTTP
// (api) all speak in these types.
package mapping

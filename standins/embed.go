// Package standins holds local stand-ins for Salesforce's Legacy Chat
// (deployment.js), Embedded Service Chat (esw.js, in place of esw.min.js) and
// Messaging for Web (bootstrap.js, in place of bootstrap.min.js) scripts. They record what the page gives
// them, and when, so the browser tests can assert it and processor dev's
// demo page can show it: one copy serves both.
package standins

import "embed"

// FS holds deployment.js, esw.js and bootstrap.js at its root.
//
//go:embed deployment.js esw.js bootstrap.js
var FS embed.FS

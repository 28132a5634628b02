// Loads analytics-next (/test/analytics.js must have run) the way every test
// page does: everything from this server — settings inline (no fetch from a
// CDN), events to http://<host>/v1/{i,g,t}, no remote metrics.
window.analytics = AnalyticsBrowser.load({
  writeKey: 'test-write-key',
  cdnURL: location.origin,
  cdnSettings: {
    integrations: {
      'Segment.io': { apiKey: 'test-write-key', apiHost: location.host + '/v1', protocol: 'http' }
    },
    metrics: { sampleRate: 0 }
  }
}, {
  integrations: {
    'Segment.io': { apiHost: location.host + '/v1', protocol: 'http' }
  }
});

// Bundled by scripts/browser-deps into build/analytics.js for the browser
// tests: the real analytics-next, exposed as window.AnalyticsBrowser.
import { AnalyticsBrowser } from '@segment/analytics-next';

window.AnalyticsBrowser = AnalyticsBrowser;

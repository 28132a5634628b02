// The page's own code on csp.html, after bootstrap.js: Salesforce's code
// snippet (its init call) and the page's analytics calls, as on
// messaging.html.
embeddedservice_bootstrap.settings.language = 'en_US';
embeddedservice_bootstrap.init(
  '00D3D000000DIdG',
  'Prechat_Messaging',
  'https://example.my.site.com/ESWPrechatMessaging1',
  { scrt2URL: 'https://example.my.salesforce-scrt.com' }
);
analytics.identify('ada-user', { email: 'ada@example.com', firstName: 'Ada', lastName: 'Lovelace' });
analytics.group('acme', { website: 'acme.test', revenue: 100 });
document.getElementById('start').addEventListener('click', function () {
  analytics.track('Live Chat Conversation Started', { caseStatus: 'New', subject: 'Shoes' });
});
// prechat.js looks for window.analytics every 250 ms.
setTimeout(function () { window.__ready = true; }, 1000);

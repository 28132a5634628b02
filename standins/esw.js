// Stand-in for Salesforce's Embedded Service Chat esw.min.js in the browser
// tests. window.embedded_svc starts with the settings esw.min.js defines;
// init records, in window.__eswLog, ["init", [its arguments], a copy of
// embedded_svc.settings at that moment], so the test sees exactly what was
// set before init. bootstrapEmbeddedService (which opens the chat window)
// and addEventHandler record their calls too. A second init throws, as a
// page that initialises twice breaks the real one.
(function () {
  'use strict';
  var log = (window.__eswLog = []);
  var inited = false;

  function copy(v) {
    return v === undefined ? null : JSON.parse(JSON.stringify(v));
  }

  var svc = {
    settings: { displayHelpButton: true, language: '' },
    init: function () {
      if (inited) throw new Error('embedded_svc.init called twice');
      inited = true;
      log.push(['init', copy(Array.prototype.slice.call(arguments)), copy(svc.settings)]);
    },
    addEventHandler: function (name) {
      log.push(['addEventHandler', name]);
    },
    bootstrapEmbeddedService: function () {
      log.push(['bootstrapEmbeddedService']);
      return Promise.resolve();
    }
  };
  window.embedded_svc = svc;
})();

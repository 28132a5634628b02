// Stand-in for Salesforce's Messaging for Web bootstrap.min.js in the
// browser tests. It records, in order, in window.__messagingLog:
//   ["init", orgId, deploymentName, siteUrl, options]   the page's init call
//   ["onEmbeddedMessagingReady"]                         dispatched 100 ms after init
//   ["setHiddenPrechatFields", fields]                   prechatAPI calls, with a
//   ["setVisiblePrechatFields", fields]                  copy of their argument
//   ["launchChat"]                                       utilAPI.launchChat()
//   ["onEmbeddedMessagingConversationStarted"]           dispatched 50 ms later
// so the order of the pre-chat calls relative to the ready event and to the
// conversation start is the order of the log. As the real API, prechatAPI
// throws before the ready event and after the conversation started; those
// calls are recorded in window.__messagingViolations instead.
(function () {
  'use strict';
  var log = (window.__messagingLog = []);
  var violations = (window.__messagingViolations = []);
  var ready = false, started = false;

  function copy(v) {
    return v === undefined ? null : JSON.parse(JSON.stringify(v));
  }

  function emit(name) {
    log.push([name]);
    window.dispatchEvent(new CustomEvent(name, { detail: {} }));
  }

  function prechat(name) {
    return function (fields) {
      var problem = !ready ? 'before onEmbeddedMessagingReady' : started ? 'after the conversation started' : '';
      if (problem) {
        violations.push([name, problem]);
        throw new Error('embeddedservice_bootstrap.prechatAPI.' + name + ' called ' + problem);
      }
      log.push([name, copy(fields)]);
    };
  }

  window.embeddedservice_bootstrap = {
    settings: {},
    init: function (orgId, deploymentName, siteUrl, options) {
      log.push(['init', orgId, deploymentName, siteUrl, copy(options)]);
      setTimeout(function () {
        ready = true;
        emit('onEmbeddedMessagingReady');
      }, 100);
    },
    prechatAPI: {
      setHiddenPrechatFields: prechat('setHiddenPrechatFields'),
      removeHiddenPrechatFields: prechat('removeHiddenPrechatFields'),
      setVisiblePrechatFields: prechat('setVisiblePrechatFields')
    },
    utilAPI: {
      launchChat: function () {
        log.push(['launchChat']);
        return new Promise(function (resolve) {
          setTimeout(function () {
            started = true;
            emit('onEmbeddedMessagingConversationStarted');
            resolve();
          }, 50);
        });
      }
    }
  };
})();

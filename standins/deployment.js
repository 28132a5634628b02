// Stand-in for Salesforce's Legacy Chat deployment.js, served by processor dev
// at /dev/deployment.js (the snippet loads it because DEPLOYMENT_SCRIPT_URL
// defaults to it in dev) and by the browser tests. Nothing talks to
// Salesforce: window.liveagent only records every call, in call order, as
// [name, arg...] in window.__liveagentCalls and dispatches a "liveagent-call" event on window
// (detail: the call) so the demo's agent view can render it.
//
// The objects returned by findOrCreate (map, saveToTranscript, showOnCreate,
// linkToEntity) and addCustomDetail (saveToTranscript, doKnowledgeSearch)
// record their calls under their own names and return themselves, as the real
// ones do; a call on a findOrCreate object also carries the entity's name in
// its non-index property "entity" (not part of its JSON).
(function () {
  'use strict';
  if (window.liveagent) return;
  var calls = (window.__liveagentCalls = []);

  function record(name, args, entity) {
    var call = [name].concat(Array.prototype.slice.call(args));
    if (entity) call.entity = entity;
    calls.push(call);
    try {
      window.dispatchEvent(new CustomEvent('liveagent-call', { detail: call }));
    } catch (e) {
      // An old browser without CustomEvent: the list is still recorded.
    }
    return call;
  }

  function chain(names, entity) {
    var obj = {};
    names.forEach(function (name) {
      obj[name] = function () {
        record(name, arguments, entity);
        return obj;
      };
    });
    return obj;
  }

  var liveagent = {
    BUTTON_EVENT: {
      BUTTON_AVAILABLE: 'BUTTON_AVAILABLE',
      BUTTON_UNAVAILABLE: 'BUTTON_UNAVAILABLE',
      BUTTON_ACCEPTED: 'BUTTON_ACCEPTED',
      BUTTON_REJECTED: 'BUTTON_REJECTED'
    },
    findOrCreate: function (entity) {
      record('findOrCreate', arguments);
      return chain(['map', 'saveToTranscript', 'showOnCreate', 'linkToEntity'], String(entity));
    },
    addCustomDetail: function () {
      record('addCustomDetail', arguments);
      return chain(['saveToTranscript', 'doKnowledgeSearch']);
    }
  };
  [
    'init',
    'setName',
    'enableLogging',
    'startChat',
    'startChatWithWindow',
    'showWhenOnline',
    'showWhenOffline',
    'addButtonEventHandler',
    'setChatWindowWidth',
    'setChatWindowHeight',
    'rejectChat',
    'disconnect'
  ].forEach(function (name) {
    liveagent[name] = function () {
      record(name, arguments);
    };
  });
  window.liveagent = liveagent;
})();

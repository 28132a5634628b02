// Stand-in for Salesforce's Legacy Chat deployment.js in the browser tests.
// window.liveagent records every call as [name, args...] in
// window.__liveagentCalls, in call order. The chains of findOrCreate (map,
// saveToTranscript, showOnCreate, linkToEntity) and of addCustomDetail
// (saveToTranscript, doKnowledgeSearch) record under their own names and
// return their object, as the real ones do.
(function () {
  'use strict';
  var calls = (window.__liveagentCalls = []);

  function recorder(name, result) {
    return function () {
      calls.push([name].concat(Array.prototype.slice.call(arguments)));
      return typeof result === 'function' ? result() : result;
    };
  }

  function chain(names) {
    var obj = {};
    names.forEach(function (name) {
      obj[name] = recorder(name, obj);
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
    findOrCreate: recorder('findOrCreate', function () {
      return chain(['map', 'saveToTranscript', 'showOnCreate', 'linkToEntity']);
    }),
    addCustomDetail: recorder('addCustomDetail', function () {
      return chain(['saveToTranscript', 'doKnowledgeSearch']);
    })
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
    liveagent[name] = recorder(name);
  });
  window.liveagent = liveagent;
})();

// Stand-in for Salesforce's Messaging for Web bootstrap.min.js in the
// browser tests and processor dev's demo page. It reproduces the event order
// Salesforce documents, and records it, in order, in window.__messagingLog:
//   ["init", orgId, deploymentName, siteUrl, options]   the page's init call
//   ["onEmbeddedMessagingReady"]                         100 ms after init, and
//                                                        again once the page may
//                                                        start another conversation
//   ["setHiddenPrechatFields", fields]                   prechatAPI calls, with a
//   ["setVisiblePrechatFields", fields]                  copy of their argument
//   ["launchChat"]                                       utilAPI.launchChat()
//   ["onEmbeddedMessagingConversationStarted"]           50 ms later, only in the tab
//                                                        that started it (older
//                                                        builds: ...ConversationCreated)
//   ["onEmbeddedMessagingConversationOpened"]            then, and in every other
//                                                        page and tab the conversation
//                                                        is loaded into
//   ["onEmbeddedMessagingConversationClosed"]            the conversation ended
//   ["setIdentityToken", identityTokenType]              userVerificationAPI calls
//   ["clearSession", shouldEndSession]
// A conversation outlives the page, as the real one does: it is kept in
// localStorage (key "prechat-standin-conversation"), so that a page loaded
// while it runs gets onEmbeddedMessagingConversationOpened after the ready
// event, and other tabs of the origin get it when it starts there (storage
// events). The conversation ends with window.__messagingStandIn.end(), what
// the visitor does with the chat window's "End conversation" and close:
// every tab gets ...ConversationClosed, then onEmbeddedMessagingReady, and
// may start another conversation. userVerificationAPI.clearSession (logout)
// ends it too and is followed by the ready event.
// As the real API, prechatAPI throws before the ready event and while a
// conversation exists (from its start or opening until the next ready
// event), and setIdentityToken throws before the ready event; those calls
// are recorded in window.__messagingViolations instead.
// Loaded as bootstrap.js?build=old it names the start event
// onEmbeddedMessagingConversationCreated, as older builds did.
(function () {
  'use strict';
  var KEY = 'prechat-standin-conversation';
  var log = (window.__messagingLog = []);
  var violations = (window.__messagingViolations = []);
  var script = document.currentScript;
  var old = !!script && /[?&]build=old(&|$)/.test(script.src);
  var STARTED = old ? 'onEmbeddedMessagingConversationCreated' : 'onEmbeddedMessagingConversationStarted';
  // ready: after the ready event; open: a conversation exists in this tab.
  var inited = false, ready = false, open = false;

  function copy(v) {
    return v === undefined ? null : JSON.parse(JSON.stringify(v));
  }

  function emit(name, detail) {
    log.push([name]);
    window.dispatchEvent(new CustomEvent(name, { detail: detail || {} }));
  }

  function running() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }

  function store(id) {
    try {
      if (id) localStorage.setItem(KEY, id);
      else localStorage.removeItem(KEY);
    } catch (e) {}
  }

  // guard records and throws when problem is set: api.name was called
  // when it must not be.
  function guard(api, name, problem) {
    if (problem) {
      violations.push([name, problem]);
      throw new Error('embeddedservice_bootstrap.' + api + '.' + name + ' called ' + problem);
    }
  }

  function prechat(name) {
    return function (fields) {
      guard('prechatAPI', name, !ready ? 'before onEmbeddedMessagingReady' : open ? 'after the conversation started' : '');
      log.push([name, copy(fields)]);
    };
  }

  // opened loads the running conversation into this tab.
  function opened() {
    if (ready && !open) {
      open = true;
      emit('onEmbeddedMessagingConversationOpened');
    }
  }

  // closed ends this tab's conversation; the visitor closes its window and
  // the page is ready for another one.
  function closed() {
    var was = open;
    open = false;
    if (was) emit('onEmbeddedMessagingConversationClosed');
    setTimeout(function () {
      if (inited && !open) emit('onEmbeddedMessagingReady');
    }, 50);
  }

  window.addEventListener('storage', function (e) {
    if (e.key !== KEY) return;
    if (e.newValue) opened();
    else if (open) closed();
  });

  window.__messagingStandIn = {
    // end ends the running conversation, in every tab.
    end: function () {
      store(null);
      closed();
    }
  };

  window.embeddedservice_bootstrap = {
    settings: {},
    init: function (orgId, deploymentName, siteUrl, options) {
      log.push(['init', orgId, deploymentName, siteUrl, copy(options)]);
      inited = true;
      setTimeout(function () {
        ready = true;
        emit('onEmbeddedMessagingReady');
        if (running()) setTimeout(opened, 50);
      }, 100);
    },
    prechatAPI: {
      setHiddenPrechatFields: prechat('setHiddenPrechatFields'),
      removeHiddenPrechatFields: prechat('removeHiddenPrechatFields'),
      setVisiblePrechatFields: prechat('setVisiblePrechatFields')
    },
    userVerificationAPI: {
      setIdentityToken: function (o) {
        guard('userVerificationAPI', 'setIdentityToken', ready ? '' : 'before onEmbeddedMessagingReady');
        log.push(['setIdentityToken', (o && o.identityTokenType) || null]);
      },
      clearSession: function (shouldEndSession) {
        log.push(['clearSession', !!shouldEndSession]);
        store(null);
        closed();
        return Promise.resolve();
      }
    },
    utilAPI: {
      launchChat: function () {
        log.push(['launchChat']);
        return new Promise(function (resolve) {
          setTimeout(function () {
            if (!open) {
              open = true;
              store(String(Date.now()));
              emit(STARTED, { conversationId: running() });
              emit('onEmbeddedMessagingConversationOpened');
            }
            resolve();
          }, 50);
        });
      }
    }
  };
})();

// The demo page of processor dev (index.html). The chat product comes from
// the URL (/?product=liveAgent|embeddedChat|messaging; index.html puts it on
// <html data-product>): the product's script and the snippet's variant are
// chosen before they load, so the product switch reloads the page. This
// script loads the real analytics-next against this server's ingest, sends
// the pre-chat form as identify, group and "Live Chat Conversation Started"
// (identify and group with the userHash of /dev/user-hash, the stand-in for
// the site's server, while "Verified by the site's server" is checked),
// loads the product's stand-in and the snippet in the order the migration
// guide gives, and renders what the stand-in received as an agent view
// (views.js), beside the compare panel of the visitor's document. It sets
// window.prechatConfig before the snippet loads.
//
// For Messaging for Web, once a conversation runs, "Reopen on another page"
// loads /?product=messaging&page=another, where the stand-in reopens the
// conversation (onEmbeddedMessagingConversationOpened) and a chat start
// shows the snippet setting nothing, quietly; "Second conversation" ends
// the conversation as the visitor would (the ready event comes again) and
// starts chat again with the form: its own document, set again. The note
// under the buttons says what happened.
(function () {
  'use strict';

  var WRITE_KEY = 'dev-write-key';
  var $ = function (id) { return document.getElementById(id); };
  var el = PrechatViews.el;
  var PRODUCT = document.documentElement.getAttribute('data-product') || 'liveAgent';
  var state = { doc: null, error: null, sending: false, analytics: false, product: false, applied: 0, second: false };
  var ANOTHER_PAGE = /[?&]page=another(&|$)/.test(location.search);

  function setStatus(kind, text) {
    $('status').setAttribute('data-state', kind);
    $('status-text').textContent = text;
    document.body.setAttribute('data-state', kind);
  }

  // ---- the product ----------------------------------------------------------
  //
  // Each product: how the page loads it, when it is ready for a
  // conversation, what onApplied does, and the status once applied.
  function script(src, then) {
    var s = document.createElement('script');
    s.src = src;
    s.onload = function () { if (then) then(); };
    s.onerror = function () { setStatus('error', 'Could not load ' + src); };
    document.body.appendChild(s);
  }

  function plural(n, one) {
    return n + ' ' + one + (n === 1 ? '' : 's');
  }

  var products = {
    liveAgent: {
      name: 'Legacy Chat',
      // The snippet loads deployment.js (here /dev/deployment.js) itself.
      load: function () { script('/v1/prechat.js'); },
      ready: function () { return !!window.liveagent && !!window.prechat; },
      applied: function (doc) {
        return 'Applied: ' + plural((doc.details || []).length, 'detail') + ' replayed, then liveagent.init (' +
          (window.__liveagentCalls || []).length + ' calls)';
      }
    },
    embeddedChat: {
      name: 'Embedded Service Chat',
      // esw.min.js first, with the page's own settings and no
      // embedded_svc.init: the snippet calls it once the document is set.
      load: function () {
        script('/dev/esw.js', function () {
          embedded_svc.settings.displayHelpButton = false;
          embedded_svc.settings.language = 'en-US';
          script('/v1/prechat.js?product=embeddedChat');
        });
      },
      ready: function () { return !!window.embedded_svc && !!window.prechat; },
      onApplied: function () { embedded_svc.bootstrapEmbeddedService(); },
      applied: function (doc) {
        var st = (doc.embeddedChat && doc.embeddedChat.settings) || {};
        return 'Applied: ' + plural((st.extraPrechatFormDetails || []).length, 'form detail') + ' and ' +
          plural((st.extraPrechatInfo || []).length, 'record') + ' set, then embedded_svc.init';
      }
    },
    messaging: {
      name: 'Messaging for Web',
      // The snippet first, so it listens before the page's init; then
      // bootstrap.min.js and the page's Salesforce code snippet, unchanged.
      load: function () {
        script('/v1/prechat.js?product=messaging', function () {
          script('/dev/bootstrap.js', function () {
            embeddedservice_bootstrap.settings.language = 'en_US';
            embeddedservice_bootstrap.init(
              '00D3D000000DIdG',
              'Prechat_Messaging',
              'https://example.my.site.com/ESWPrechatMessaging1',
              { scrt2URL: 'https://example.my.salesforce-scrt.com' }
            );
          });
        });
      },
      ready: function () {
        return !!window.prechat && (window.__messagingLog || []).some(function (c) { return c[0] === 'onEmbeddedMessagingReady'; });
      },
      onApplied: function () { embeddedservice_bootstrap.utilAPI.launchChat(); },
      applied: function (doc) {
        var m = doc.messaging || {};
        return (state.applied > 1 ? 'Conversation ' + state.applied + ', applied: ' : 'Applied: ') +
          Object.keys(m.hiddenFields || {}).length + ' hidden and ' +
          Object.keys(m.visibleFields || {}).length + ' visible pre-chat fields set, then launchChat';
      }
    }
  };
  var product = products[PRODUCT] || products.liveAgent;

  document.querySelectorAll('#product-switch a').forEach(function (a) {
    if (a.getAttribute('data-product') === PRODUCT) a.setAttribute('aria-current', 'page');
  });

  function maybeReady() {
    if (!state.product && product.ready()) state.product = true;
    var running = PRODUCT === 'messaging' && since().indexOf('onEmbeddedMessagingConversationOpened') >= 0;
    if (state.analytics && state.product && !state.sending && !state.doc && !state.error && !running) {
      setStatus('idle', 'Ready: fill the form and start a chat');
    }
    return state.product;
  }

  // ---- analytics-next, entirely local -------------------------------------
  //
  // The settings a CDN would serve are inline (cdnSettings), events go to
  // <this host>/v1/{i,g,t,...} and remote metrics are off.
  var segment = { apiKey: WRITE_KEY, apiHost: location.host + '/v1', protocol: location.protocol.replace(':', '') };
  var analytics = (window.analytics = window.AnalyticsBrowser.load(
    {
      writeKey: WRITE_KEY,
      cdnURL: location.origin,
      cdnSettings: { integrations: { 'Segment.io': segment }, metrics: { sampleRate: 0 } }
    },
    { integrations: { 'Segment.io': { apiHost: segment.apiHost, protocol: segment.protocol } } }
  ));

  function showVisitor() {
    Promise.resolve(analytics.user()).then(function (user) {
      var id = user && user.anonymousId();
      $('anonymous-id').textContent = id || '(none yet)';
      // The document is served only with the conversation secret, which
      // the snippet made and keeps: it is no link another tab could open.
      if (id) {
        $('document-link').replaceChildren(el('code', { title: 'served only with this page’s conversation secret in the X-Prechat-Token header' },
          'GET /v1/prechat/' + id + ' + X-Prechat-Token'));
      }
    });
  }
  analytics.ready(function () {
    state.analytics = true;
    showVisitor();
    maybeReady();
  });

  // ---- the snippet's hooks --------------------------------------------------
  window.prechatConfig = {
    onApplied: function (doc) {
      state.doc = doc;
      state.error = null;
      state.applied++;
      if (product.onApplied) product.onApplied(doc);
      setStatus('applied', product.applied(doc));
      $('start').textContent = 'Chat started';
      $('reset').hidden = false;
      render();
    },
    onError: function (err) {
      state.error = err;
      state.sending = false;
      setStatus('error', String((err && err.message) || err));
      $('start').disabled = false;
      $('reset').hidden = false;
    }
  };

  // ---- the form ---------------------------------------------------------------
  function slug(s) {
    return String(s).trim().toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  }
  var userIdFromEmail = function (email) { return 'user-' + slug(email); };
  var companyIdFromName = function (name) { return 'company-' + slug(name); };

  var example = {
    name: 'Ada Lovelace', email: 'ada@example.com', company: 'Acme', website: 'acme.test',
    revenue: '100', subject: 'Order 42 is late', caseStatus: 'New'
  };
  $('fill').addEventListener('click', function () {
    Object.keys(example).forEach(function (k) { $(k).value = example[k]; });
  });
  $('reset').addEventListener('click', function () {
    // A new visitor: a fresh anonymousId, no running Messaging conversation,
    // and a page whose chat product was not initialised yet (the product
    // stays, it is in the URL).
    if (window.__messagingStandIn) window.__messagingStandIn.end();
    Promise.resolve(analytics.reset()).then(function () {
      location.assign('/?product=' + PRODUCT);
    });
  });

  function sent(type, path, promise, proof) {
    var item = el('li', { class: 'pending' }, el('b', null, type), el('span', { class: 'muted' }, path),
      proof ? el('span', { class: 'proof', title: 'context.prechat.userHash' }, 'userHash') : null, el('code', { class: 'muted' }, '…'));
    $('events').appendChild(item);
    $('sent').hidden = false;
    Promise.resolve(promise).then(function (ctx) {
      item.className = 'ok';
      var id = (ctx && ctx.event && ctx.event.messageId) || '';
      item.lastChild.textContent = id;
      item.lastChild.title = 'messageId ' + id;
    }, function (e) {
      item.className = 'failed';
      item.lastChild.textContent = String(e);
    });
  }

  $('prechat-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var v = {};
    Object.keys(example).forEach(function (k) { v[k] = $(k).value.trim(); });
    var names = v.name.split(/\s+/);
    var traits = { email: v.email, firstName: names[0] };
    if (names.length > 1) traits.lastName = names.slice(1).join(' ');

    var userId = userIdFromEmail(v.email);
    state.sending = true;
    state.error = null;
    $('start').disabled = true;
    $('events').replaceChildren();

    // Verified: first the userHash, as the site's server would render it
    // into the page of a logged-in user; then the three events, in order.
    var verified = $('verified').checked;
    if (verified) setStatus('waiting', 'Asking the site’s server for the userHash…');
    var proof = verified ? userHash(userId) : Promise.resolve(null);
    proof.then(function (hash) {
      var options = hash ? { context: { prechat: { userHash: hash } } } : {};
      setStatus('waiting', 'Waiting: events sent, the snippet long-polls for the pre-chat document…');
      sent('identify', '/v1/i', analytics.identify(userId, traits, options), hash);
      if (v.company) {
        var group = { name: v.company };
        if (v.website) group.website = v.website;
        if (v.revenue !== '') group.revenue = Number(v.revenue);
        sent('group', '/v1/g', analytics.group(companyIdFromName(v.company), group, options), hash);
      }
      var props = { caseStatus: v.caseStatus };
      if (v.subject) props.subject = v.subject;
      sent('track “Live Chat Conversation Started”', '/v1/t', analytics.track('Live Chat Conversation Started', props));
      showVisitor();
    }, function (err) {
      state.sending = false;
      setStatus('error', String((err && err.message) || err));
      $('start').disabled = false;
    });
  });

  // userHash asks the stand-in for the site's server (processor dev's
  // /dev/user-hash) for the HMAC of userId under IDENTITY_SECRET.
  function userHash(userId) {
    return fetch('/dev/user-hash?userId=' + encodeURIComponent(userId)).then(function (res) {
      if (!res.ok) {
        return res.text().then(function (text) { throw new Error('The site’s server did not sign the userId: ' + res.status + ' ' + text.trim()); });
      }
      return res.json();
    }).then(function (body) { return body.userHash; });
  }

  // ---- Messaging: the conversation outlives the page ----------------------------
  //
  // The stand-in keeps the conversation in localStorage, as Messaging keeps
  // it across pages and tabs. The page logs the snippet's document requests
  // in the stand-in's log, so the timeline shows when each document came.
  function messagingLog() { return window.__messagingLog || []; }

  // since lists the steps of the log after the last ready event.
  function since() {
    var log = messagingLog(), i = log.length;
    while (i-- && log[i][0] !== 'onEmbeddedMessagingReady');
    return log.slice(i + 1).map(function (c) { return c[0]; });
  }

  function note(text) { $('lifecycle-note').textContent = text; }

  if (PRODUCT === 'messaging') {
    var open = XMLHttpRequest.prototype.open;
    XMLHttpRequest.prototype.open = function (method, url) {
      if (/\/v1\/prechat\//.test(url)) {
        this.addEventListener('load', function () {
          var status = this.status, applied = state.applied;
          messagingLog().push(['document', status]);
          // After the snippet's own handler: did it apply the document?
          setTimeout(function () {
            var after = since();
            if (status === 200 && state.applied === applied && after.indexOf('onEmbeddedMessagingConversationOpened') >= 0) {
              state.sending = false;
              setStatus('idle', 'Nothing set: a conversation already runs on this page, so the snippet left the fields alone and reported no error');
              note('The document arrived while the conversation runs here: its fields were set where it started, and can no longer be set. ' +
                'The snippet set nothing, called no onError, and start() resolved to null.');
              $('start').disabled = false;
            }
            render();
          }, 0);
        });
      }
      return open.apply(this, arguments);
    };
    $('page-note').hidden = !ANOTHER_PAGE;
    $('reopen').addEventListener('click', function () {
      location.assign('/?product=messaging&page=another');
    });
    $('second').addEventListener('click', function () {
      state.second = true;
      $('second').disabled = $('reopen').disabled = true;
      note('Ending the conversation, as the visitor does from its window…');
      window.__messagingStandIn.end();
    });
    window.addEventListener('onEmbeddedMessagingReady', function () {
      if (!state.second) return;
      state.second = false;
      note('The conversation ended and its window closed: Messaging fired onEmbeddedMessagingReady again, and the page may ' +
        'start another conversation. Start chat went out again: the snippet fetches the new conversation start’s document and sets its fields again.');
      $('prechat-form').requestSubmit();
    });
    window.addEventListener('onEmbeddedMessagingConversationOpened', function () {
      $('messaging-lifecycle').hidden = false;
      $('second').disabled = $('reopen').disabled = false;
      if (ANOTHER_PAGE && !state.applied && !$('lifecycle-note').textContent) {
        note('This page reopened the conversation of the first page (onEmbeddedMessagingConversationOpened after the ready event).');
        setStatus('idle', 'A conversation runs: it was opened from another page');
      }
    });
  }

  // ---- the agent view and the compare panel ---------------------------------------
  function render() {
    var view = PrechatViews[PRODUCT](state.doc);
    var log = view.log;
    $('calls-count').textContent = String(log.length);
    $('calls-json').textContent = log.length ? '[\n' + log.map(function (c) { return '  ' + JSON.stringify(c); }).join(',\n') + '\n]' : '[]';
    if (state.doc) $('document-json').textContent = JSON.stringify(state.doc, null, 2);
    $('agent-empty').hidden = !!view.body;
    $('agent-body').hidden = !view.body;
    $('agent-body').replaceChildren(el('div', null, view.body));

    var warnings = ((state.doc && state.doc.warnings) || []).map(function (w) {
      return typeof w === 'string' ? w : w.message || JSON.stringify(w);
    }).concat(view.warnings);
    $('agent-warnings').hidden = warnings.length === 0;
    $('agent-warnings').replaceChildren.apply($('agent-warnings'), warnings.map(function (w) { return el('li', null, w); }));

    var table = PrechatViews.compare(state.doc, PRODUCT);
    $('compare-empty').hidden = !!table;
    $('compare-body').replaceChildren(el('div', null, table));
  }

  // The stand-ins' records change on these events, and in onApplied.
  ['liveagent-call', 'onEmbeddedMessagingReady', 'onEmbeddedMessagingConversationStarted', 'onEmbeddedMessagingConversationCreated',
    'onEmbeddedMessagingConversationOpened', 'onEmbeddedMessagingConversationClosed'].forEach(function (name) {
    window.addEventListener(name, render);
  });
  window.addEventListener('onEmbeddedMessagingReady', maybeReady);
  render();
  setStatus('idle', 'Loading analytics-next and ' + product.name + '…');
  product.load();
  // The products signal readiness differently: look until they are ready.
  var tries = 0;
  var look = setInterval(function () {
    if (maybeReady() || ++tries > 300) clearInterval(look);
  }, 50);
})();

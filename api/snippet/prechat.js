// Prechat browser snippet, served as GET /v1/prechat.js.
//
// It replaces Segment's browser "Salesforce Live Agent" destination for the
// three Salesforce chat products. When the visitor starts a conversation
// ("Live Chat Conversation Started" through analytics.js, or prechat.start())
// it fetches the visitor's pre-chat document from the API and hands it to
// the product the page runs, in that product's order:
// - liveAgent (Legacy Chat): it loads Salesforce's deployment.js on every
//   page; on a conversation start it replays the document as
//   liveagent.findOrCreate/addCustomDetail/map/setName calls, then
//   liveagent.init. Without a conversation start it never calls init.
// - embeddedChat (Embedded Service Chat): the page loads esw.min.js and does
//   not call init; the snippet adds the document's extraPrechatFormDetails,
//   extraPrechatInfo and prepopulatedPrechatFields to embedded_svc.settings,
//   then calls embedded_svc.init with the document's arguments.
// - messaging (Messaging for Web): the page loads bootstrap.min.js and calls
//   embeddedservice_bootstrap.init itself, after this snippet; once
//   onEmbeddedMessagingReady fired the snippet sets the document's hidden and
//   visible pre-chat fields, and never once a conversation exists on the
//   page: onEmbeddedMessagingConversationStarted (...Created in older
//   builds) in the tab that started it, ...ConversationOpened in every page
//   and tab it is loaded into. A later onEmbeddedMessagingReady (the
//   conversation ended and its window closed, or clearSession) makes the
//   page ready for another conversation, whose start brings its own
//   document.
//
// The server renders one variant per product (see renderSnippet in
// snippet.go), keeping the lines between "//#if TAG..." and "//#end" when
// one of the TAGs is the variant's product: /v1/prechat.js?product=NAME
// serves that product's variant. /v1/prechat.js serves the liveAgent
// variant with the "detect" blocks: when prechatConfig.product names
// another product, or the page already has embeddedservice_bootstrap or
// embedded_svc, it loads that product's variant instead.
//
// The server also strips blank lines, lines that start with // and
// indentation, and the spaces that separate no words: keep every comment on
// a line of its own, and end statements with semicolons. Plain ES5, no
// dependencies; every variant must stay under 7 KB (browser_test.go checks
// them).
//
// The conversation secret: on each conversation start sent through
// analytics.js the snippet makes a random secret (256 bits), adds only its
// SHA-256 to the event (context.prechat.tokenHash, lowercase hex), and
// presents the secret when it fetches the document (X-Prechat-Token): the
// API serves a document only to the page that started its conversation,
// and Segment, its destinations and logs never see the secret. It needs
// crypto.subtle, which browsers give only to https pages (and localhost).
// A conversation started server-side passes its secret to
// prechat.start({token}).
//
// Verified users: an identity token (a JWT whose sub is the userId, such as
// the one a page gives Messaging's User Verification) goes with this page's
// identify and group events that carry a userId and with its conversation
// starts, as context.prechat.identityToken; a conversation start without a
// userId gets the token's sub. The token comes from
// prechatConfig.identityToken, prechat.start({identityToken}) or, on
// Messaging pages, the page's
// embeddedservice_bootstrap.userVerificationAPI.setIdentityToken (unless
// prechatConfig.identityToken is false); its clearSession (logout) makes
// the snippet forget the user's document, token, events and secret.
//
// Options, set before the snippet loads: window.prechatConfig = {apiBase,
// wait, scriptUrl, product, identityToken, onError, onApplied}.
//
// The snippet trusts a global (prechatConfig, the product's, its own) only
// when it is a plain object, document.currentScript only when it is a
// script, and apiBase and scriptUrl only when they are https URLs: HTML that
// a sanitizer let through can name elements after globals (<a
// id=prechatConfig>, <form name=prechatConfig><input name=scriptUrl>, <img
// name=currentScript>), and such an element must not choose what loads.
(function (w, d) {
  "use strict";
  // is returns v when it is of type t (default: a plain Object, which an
  // element or a collection of them is not), else null.
  function is(v, t) {
    return Object.prototype.toString.call(v) == "[object " + (t || "Object") + "]" ? v : null;
  }
  // https returns v when it is an https URL, else null.
  function https(v) {
    return is(v, "String") && /^https:\/\//.test(v) ? v : null;
  }
  if (is(w.prechat)) return;
  var cfg = is(w.prechatConfig) || {};
  var scriptUrl = https(cfg.scriptUrl) || "__DEPLOYMENT_SCRIPT_URL__";
  var base = https(cfg.apiBase);
  var me = is(d.currentScript, "HTMLScriptElement");
  // the variant's product and its global object
  var product = "__PRODUCT__";
  var G = "__GLOBAL__";
  var errFns = [];
  var okFns = [];
  // messageIds of this page's identify, group and conversation start events
  var ids = [];
  // the product: 0 loading, 1 ready, 2 failed; queue runs when it settles
  var la = 0;
  var queue = [];
  var busy, inited, hooked, secret, wrapped;
  var applied = null;
  // the identity token this page's events carry
  var idt = is(cfg.identityToken, "String");
  // generation: forget() makes every start under way a stale one
  var gen = 0;
  //#if messaging
  // the conversation on this page: 0 none, 1 started in this tab, 2 of
  // another page or tab, opened here
  var conv = 0;
  //#end

  // The API is where this script came from (document.currentScript, else
  // the last script from a /v1/prechat.js); an inline copy uses the page's
  // own origin.
  for (var ss = d.scripts || [], i = ss.length; !me && i--;) if (/\/v1\/prechat\.js/.test(ss[i].src)) me = is(ss[i], "HTMLScriptElement");
  if (base == null) base = me && me.src ? me.src.replace(/\/v1\/prechat\.js.*$/, "") : "";
  base = String(base).replace(/\/+$/, "");
  //#if detect
  // A page of another product gets that product's variant.
  var p = cfg.product || (is(w.embeddedservice_bootstrap) ? "messaging" : is(w.embedded_svc) ? "embeddedChat" : product);
  if (p != product) {
    var v = d.createElement("script");
    v.src = base + "/v1/prechat.js?product=" + encodeURIComponent(p);
    (d.head || d.documentElement).appendChild(v);
    return;
  }
  //#end
  if (cfg.onError) errFns.push(cfg.onError);
  if (cfg.onApplied) okFns.push(cfg.onApplied);

  function warn(msg) {
    if (w.console) console.warn("prechat: " + msg);
  }

  // each calls every fn with v; a callback that throws is only logged.
  function each(fns, v) {
    for (var i = 0; i < fns.length; i++) {
      try { fns[i](v); } catch (e) { warn("callback threw " + e); }
    }
  }

  function fail(msg) {
    warn(msg);
    each(errFns, new Error("prechat: " + msg));
  }

  function settle(state, msg) {
    la = state;
    if (msg) fail(msg);
    var q = queue;
    queue = [];
    for (var i = 0; i < q.length; i++) q[i]();
  }

  // forget ends this page's conversation: its document is no longer the
  // applied one, and starts under way apply nothing. On logout (all) the
  // user's token, the ids of their events and the secret go too.
  function forget(all) {
    gen++;
    applied = null;
    inited = busy = false;
    //#if messaging
    conv = 0;
    //#end
    if (all) idt = secret = null, ids = [];
  }

  // sub is the sub claim of a JWT, unverified (the server verifies it).
  function sub(t) {
    try {
      return is(JSON.parse(decodeURIComponent(escape(atob(t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))))).sub, "String");
    } catch (e) {}
  }

  // every calls f now and every 250 ms until it returns true, for 30 s.
  function every(f) {
    if (!f()) {
      var n = 0;
      var t = setInterval(function () {
        if (f() || ++n > 120) clearInterval(t);
      }, 250);
    }
  }

  // clean strips URL-encoding and JSON quotes: %22abc%22 and "abc" are abc.
  function clean(v) {
    v = v ? String(v) : "";
    try { v = decodeURIComponent(v); } catch (e) {}
    return v.replace(/^"+|"+$/g, "");
  }

  // hex is the lowercase hex of an ArrayBuffer's or array's bytes.
  function hex(b) {
    return [].map.call(new Uint8Array(b), function (x) { return (x + 256).toString(16).slice(1); }).join("");
  }

  function anonymousId() {
    var a = w.analytics, u, m;
    try {
      u = a && typeof a.user == "function" && a.user();
      m = u && typeof u.anonymousId == "function" && clean(u.anonymousId());
      if (m) return m;
    } catch (e) {}
    m = /(?:^|;\s*)ajs_anonymous_id=([^;]*)/.exec(d.cookie);
    if (m && clean(m[1])) return clean(m[1]);
    try { return clean(w.localStorage.getItem("ajs_anonymous_id")); } catch (e) { return ""; }
  }

  // apply hands the document to the product and returns an error message,
  // or "".
  function apply(doc) {
    var L = is(w[G]), t, v;
    //#if liveAgent
    var ds = doc.details || [], es = doc.entities || [], o = {}, c = doc.chat || {}, prev, f, i, j;
    //#end
    //#if embeddedChat messaging
    var x = doc[product], k, s;
    //#end
    if (inited) return "";
    if (la != 1 || !L) return "no " + G + ", the document was not applied";
    //#if embeddedChat messaging
    if (!x) return "the document has no " + product + " output: add it to the settings' products";
    //#end
    //#if messaging
    if (conv == 1) return "the conversation already started, the pre-chat fields were not set";
    // A conversation of another page or tab runs here: its fields were set
    // where it started; nothing to set, nothing wrong.
    if (conv) return "";
    //#end
    //#if liveAgent
    for (i = 0; i < es.length; i++) o[es[i].entityName] = es[i];
    // leave ends an entity: its findOrCreate options, then setName after
    // the Contact details.
    var leave = function () {
      var e = o[prev];
      if (e) {
        if (e.saveToTranscript) f.saveToTranscript(e.saveToTranscript);
        if (e.showOnCreate) f.showOnCreate();
        if (e.linkToEntity) f.linkToEntity(e.linkToEntity.entityName, e.linkToEntity.fieldName);
      }
      if (prev == "Contact" && doc.visitorName) L.setName(doc.visitorName);
    };
    //#end
    try {
      inited = true;
      //#if messaging
      s = L.prechatAPI;
      if (x.hiddenFields) s.setHiddenPrechatFields(x.hiddenFields);
      if (x.visibleFields) s.setVisiblePrechatFields(x.visibleFields);
      //#end
      //#if embeddedChat
      // Arrays are appended to the page's own, objects merged into them.
      s = L.settings = L.settings || {};
      for (k in x.settings) {
        v = x.settings[k];
        if (v.concat) s[k] = (s[k] || []).concat(v);
        else for (t in v) (s[k] = s[k] || {})[t] = v[t];
      }
      t = x.init;
      L.init(t.coreUrl, t.siteUrl, t.gslbUrl, t.orgId, t.deploymentName, t.options);
      //#end
      //#if liveAgent
      for (i = 0; i < ds.length; i++) {
        t = ds[i];
        if (t.entity != prev) {
          leave();
          prev = t.entity;
          f = L.findOrCreate(t.entity);
        }
        v = L.addCustomDetail(t.label, t.value, t.displayToAgent);
        for (j = 0; j < (t.transcriptFields || []).length; j++) v.saveToTranscript(t.transcriptFields[j]);
        f.map(t.fieldName, t.label, t.doFind, t.isExactMatch, t.doCreate);
      }
      leave();
      L.init(c.chatUrl, c.deploymentId, c.orgId);
      if (c.enableLogging) L.enableLogging();
      //#end
    } catch (e) {
      return "applying the document failed: " + e;
    }
    applied = doc;
    each(okFns, doc);
    return "";
  }

  // start fetches the visitor's document and applies it, once per page (once
  // per conversation on Messaging pages). It returns a Promise of the
  // applied document (null on failure) where Promise exists. An
  // identityToken becomes the page's; given alone before any conversation
  // start, that is all start does.
  function start(o) {
    var P = w.Promise, resolve, tries = 0, g = gen;
    var p = P && new P(function (r) { resolve = r; });
    var end = function (msg) {
      if (g == gen) {
        busy = false;
        if (msg) fail(msg);
      }
      if (resolve) resolve(g == gen ? applied : null);
    };
    try {
      o = o || {};
      if (is(o.identityToken, "String")) {
        idt = o.identityToken;
        if (!o.anonymousId && !o.token && !o.after && !secret) o = 0;
      }
      if (!o || applied || busy) {
        if (resolve) resolve(applied);
        return p;
      }
      var id = clean(o.anonymousId) || anonymousId(), tok = o.token || secret;
      var after = [].concat(o.after || []).slice(-20);
      var wait = Math.max(0, Math.min(30, +(o.wait != null ? o.wait : cfg.wait != null ? cfg.wait : 10) || 0));
      if (!id) return end("no anonymousId"), p;
      busy = true;
      var url = base + "/v1/prechat/" + encodeURIComponent(id) + "?wait=" + wait +
        (after.length ? "&after=" + after.map(encodeURIComponent).join(",") : "");
      var get = function () {
        var x = new XMLHttpRequest();
        x.open("GET", url);
        if (tok) x.setRequestHeader("X-Prechat-Token", tok);
        x.timeout = (wait + 10) * 1000;
        x.onload = function () {
          var s = x.status, doc = null;
          if (g != gen) return end();
          if ((s == 503 || s == 429) && ++tries < 3) return setTimeout(get, 1000 * tries);
          try { doc = s == 200 && JSON.parse(x.responseText); } catch (e) {}
          if (!doc) return end(s == 404 ? "no pre-chat document for " + id : "document request failed: HTTP " + s);
          var go = function () { end(g == gen ? apply(doc) : ""); };
          if (la) return go();
          queue.push(go);
          //#if embeddedChat messaging
          // A product that is not ready within 15 s fails the start.
          setTimeout(function () {
            if (!la) queue = [], end(G + " is not ready, the document was not applied");
          }, 15000);
          //#end
        };
        x.onerror = x.ontimeout = function (e) {
          end("document request failed: " + e.type);
        };
        x.send();
      };
      get();
    } catch (e) {
      end("start failed: " + e);
    }
    return p;
  }

  // middleware is an analytics.js source middleware: it records the page's
  // identify, group and conversation start messageIds, adds the page's
  // identity token to those of them that carry a userId and to conversation
  // starts (with the token's sub as userId when there is none) and, on a
  // conversation start, makes a new conversation secret, adds its hash to
  // the event (context.prechat.tokenHash) and, once the events are applied,
  // fetches the document with the secret. analytics-next waits for the
  // Promise it then returns, analytics.js 1.x for next. Without
  // crypto.subtle (a page not served over https) it fetches without a
  // secret.
  function middleware(o) {
    // go lets the event go with hash h of secret k (none without h), and
    // fetches the document after a conversation start.
    var e, t, c, go = function (k, h) {
      try {
        if (h) {
          secret = k;
          c = e.context = e.context || {};
          (c.prechat = c.prechat || {}).tokenHash = h;
        }
        if (t == 1) setTimeout(function () { start({ anonymousId: e.anonymousId, after: ids }); }, 0);
      } catch (x) {}
      o.next(o.payload);
    };
    try {
      e = o.payload.obj;
      t = e.type;
      if (e.messageId && (t == "identify" || t == "group" || (t == "track" && e.event == "Live Chat Conversation Started"))) {
        ids.push(String(e.messageId));
        // A token the event carries already is kept.
        if (idt && (e.userId || t == "track")) {
          c = e.context = e.context || {};
          c = c.prechat = c.prechat || {};
          c.identityToken = c.identityToken || idt;
          e.userId = e.userId || sub(c.identityToken);
        }
        if (t == "track") {
          t = 1;
          // The secret: 256 random bits as hex; its hash: the hex SHA-256
          // of that text.
          c = w.crypto;
          var s = hex(c.getRandomValues(new Uint8Array(32)));
          return c.subtle.digest("SHA-256", new TextEncoder().encode(s)).then(function (h) {
            go(s, hex(h));
          }, go);
        }
      }
    } catch (x) {
      if (t == 1) warn("no conversation secret: " + x);
    }
    go();
  }

  // hook registers the middleware once window.analytics takes it: the
  // analytics-next instance and the classic snippet's stub have
  // addSourceMiddleware at once, an old stub only after it loaded.
  function hook() {
    var a = w.analytics;
    if (!hooked && a && typeof a.addSourceMiddleware == "function") {
      hooked = true;
      try { a.addSourceMiddleware(middleware); } catch (e) { warn("cannot hook analytics: " + e); }
    }
    return hooked;
  }

  w.prechat = {
    apiBase: base,
    scriptUrl: scriptUrl,
    product: product,
    start: start,
    anonymousId: anonymousId,
    onError: function (fn) { errFns.push(fn); },
    onApplied: function (fn) {
      okFns.push(fn);
      if (applied) each([fn], applied);
    }
  };

  //#if messaging
  // watch follows the page's User Verification: the token it gives
  // setIdentityToken becomes the page's (unless prechatConfig.identityToken
  // is false), clearSession (logout) forgets the user.
  var watch = function () {
    var u = is(w[G]) && is(w[G].userVerificationAPI), f;
    if (u && u != wrapped) {
      wrapped = u;
      f = function (k, h) {
        var o = u[k];
        try {
          if (typeof o == "function") u[k] = function (a) {
            try { h(a); } catch (e) {}
            return o.apply(this, arguments);
          };
        } catch (e) { warn("cannot follow userVerificationAPI." + k + ": " + e); }
      };
      if (cfg.identityToken !== false) f("setIdentityToken", function (a) { idt = is(a.identityToken, "String") || idt; });
      f("clearSession", function () { forget(1); });
    }
    return wrapped;
  };
  // The page calls embeddedservice_bootstrap.init after this snippet. The
  // listeners capture, so they run before the page's own at window.
  var on = function (n, f) { w.addEventListener("onEmbeddedMessaging" + n, f, true); };
  on("Ready", function () {
    if (conv || applied) forget();
    watch();
    settle(1);
  });
  on("ConversationStarted", function () { conv = 1; });
  on("ConversationCreated", function () { conv = 1; });
  on("ConversationOpened", function () { conv = conv || 2; });
  every(watch);
  //#end
  //#if embeddedChat
  // esw.min.js defines embedded_svc; it may load after this snippet.
  every(function () {
    if (is(w[G])) settle(1);
    return la;
  });
  //#end
  //#if liveAgent
  if (is(w[G])) {
    settle(1);
  } else {
    var s = d.createElement("script");
    s.async = true;
    s.src = scriptUrl;
    s.onload = function () {
      if (is(w[G])) settle(1);
      else settle(2, scriptUrl + " defined no liveagent");
    };
    s.onerror = function () { settle(2, "could not load " + scriptUrl); };
    (d.head || d.documentElement).appendChild(s);
  }
  //#end
  // analytics.js may load after this snippet: look for it for 30 s.
  every(hook);
})(window, document);

// Prechat browser snippet, served as GET /v1/prechat.js.
//
// It replaces Segment's browser "Salesforce Live Agent" destination: it loads
// Salesforce's deployment.js on every page, and when the visitor starts a
// conversation ("Live Chat Conversation Started" through analytics.js, or
// prechat.start()) it fetches the visitor's pre-chat document from the API
// and replays it as liveagent.findOrCreate/addCustomDetail/map/setName calls,
// then liveagent.init. Without a conversation start it never calls init, so
// the page keeps full use of liveagent.
//
// The server strips blank lines, lines that start with // and indentation
// (see renderSnippet in snippet.go): keep every comment on a line of its own,
// and end statements with semicolons. Plain ES5, no dependencies; the
// rendered snippet must stay under 5 KB (browser_test.go checks it).
//
// Options, set before the snippet loads: window.prechatConfig = {apiBase,
// wait, scriptUrl, onError, onApplied}.
(function (w, d) {
  "use strict";
  if (w.prechat) return;
  var cfg = w.prechatConfig || {};
  var scriptUrl = cfg.scriptUrl || "__DEPLOYMENT_SCRIPT_URL__";
  var base = cfg.apiBase;
  var me = d.currentScript;
  var errFns = [];
  var okFns = [];
  // messageIds of this page's identify, group and conversation start events
  var ids = [];
  // deployment.js: 0 loading, 1 loaded, 2 failed; queue runs when it settles
  var la = 0;
  var queue = [];
  var busy, inited, hooked;
  var applied = null;

  // The API is where this script came from; an inline copy uses the page's
  // own origin.
  if (base == null) base = me && me.src ? me.src.replace(/\/v1\/prechat\.js.*$/, "") : "";
  base = String(base).replace(/\/+$/, "");
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

  // clean strips URL-encoding and JSON quotes: %22abc%22 and "abc" are abc.
  function clean(v) {
    v = v ? String(v) : "";
    try { v = decodeURIComponent(v); } catch (e) {}
    return v.replace(/^"+|"+$/g, "");
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

  // apply replays the document and returns an error message, or "".
  function apply(doc) {
    var L = w.liveagent, ds = doc.details || [], c = doc.chat || {}, prev, f, t, i;
    if (inited) return "";
    if (la != 1 || !L) return "no liveagent, the document was not applied";
    var leave = function () { if (prev == "Contact" && doc.visitorName) L.setName(doc.visitorName); };
    try {
      for (i = 0; i < ds.length; i++) {
        t = ds[i];
        if (t.entity != prev) {
          leave();
          prev = t.entity;
          f = L.findOrCreate(t.entity);
        }
        L.addCustomDetail(t.label, t.value, t.displayToAgent);
        f.map(t.fieldName, t.label, t.doFind, t.isExactMatch, t.doCreate);
      }
      leave();
      inited = true;
      L.init(c.chatUrl, c.deploymentId, c.orgId);
      if (c.enableLogging) L.enableLogging();
    } catch (e) {
      return "applying the document failed: " + e;
    }
    applied = doc;
    each(okFns, doc);
    return "";
  }

  // start fetches the visitor's document and applies it, once per page. It
  // returns a Promise of the applied document (null on failure) where
  // Promise exists.
  function start(o) {
    var P = w.Promise, resolve, tries = 0;
    var p = P && new P(function (r) { resolve = r; });
    var end = function (msg) {
      busy = false;
      if (msg) fail(msg);
      if (resolve) resolve(applied);
    };
    try {
      o = o || {};
      if (applied || busy) {
        if (resolve) resolve(applied);
        return p;
      }
      var id = clean(o.anonymousId) || anonymousId();
      var after = [].concat(o.after || []).slice(-20);
      var wait = Math.max(0, Math.min(30, +(o.wait != null ? o.wait : cfg.wait != null ? cfg.wait : 10) || 0));
      if (!id) return end("no anonymousId"), p;
      busy = true;
      var url = base + "/v1/prechat/" + encodeURIComponent(id) + "?wait=" + wait +
        (after.length ? "&after=" + after.map(encodeURIComponent).join(",") : "");
      var get = function () {
        var x = new XMLHttpRequest();
        x.open("GET", url);
        x.timeout = (wait + 10) * 1000;
        x.onload = function () {
          var s = x.status, doc = null;
          if ((s == 503 || s == 429) && ++tries < 3) return setTimeout(get, 1000 * tries);
          try { doc = s == 200 && JSON.parse(x.responseText); } catch (e) {}
          if (!doc) return end(s == 404 ? "no pre-chat document for " + id : "document request failed: HTTP " + s);
          var go = function () { end(apply(doc)); };
          if (la) go();
          else queue.push(go);
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
  // identify, group and conversation start messageIds and, on a conversation
  // start, fetches the document once those events are applied.
  function middleware(o) {
    try {
      var e = o.payload.obj, t = e.type;
      if (e.messageId && (t == "identify" || t == "group" || (t == "track" && e.event == "Live Chat Conversation Started"))) {
        ids.push(String(e.messageId));
        if (t == "track") {
          setTimeout(function () { start({ anonymousId: e.anonymousId, after: ids }); }, 0);
        }
      }
    } catch (x) {}
    o.next(o.payload);
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
    start: start,
    anonymousId: anonymousId,
    onError: function (fn) { errFns.push(fn); },
    onApplied: function (fn) {
      okFns.push(fn);
      if (applied) each([fn], applied);
    }
  };

  if (w.liveagent) {
    settle(1);
  } else {
    var s = d.createElement("script");
    s.async = true;
    s.src = scriptUrl;
    s.onload = function () {
      if (w.liveagent) settle(1);
      else settle(2, scriptUrl + " defined no liveagent");
    };
    s.onerror = function () { settle(2, "could not load " + scriptUrl); };
    (d.head || d.documentElement).appendChild(s);
  }
  // analytics.js may load after this snippet: look for it for 30 s.
  if (!hook()) {
    var polls = 0;
    var timer = setInterval(function () {
      if (hook() || ++polls > 120) clearInterval(timer);
    }, 250);
  }
})(window, document);

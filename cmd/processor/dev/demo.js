// The demo page of processor dev (index.html). It loads the real
// analytics-next against this server's ingest, sends the pre-chat form as
// identify, group and "Live Chat Conversation Started", and renders the
// liveagent calls that the snippet makes on the stand-in deployment.js as an
// agent view. It runs before /v1/prechat.js, so window.prechatConfig is set
// when the snippet reads it.
(function () {
  'use strict';

  var WRITE_KEY = 'dev-write-key';
  var $ = function (id) { return document.getElementById(id); };
  var state = { doc: null, error: null, sending: false };

  // el builds an element: attributes, then children (strings become text).
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'class') node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null || c === false) continue;
      node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function setStatus(kind, text) {
    $('status').setAttribute('data-state', kind);
    $('status-text').textContent = text;
    document.body.setAttribute('data-state', kind);
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
      if (id) {
        var link = el('a', { href: '/v1/prechat/' + encodeURIComponent(id), target: '_blank' }, 'GET /v1/prechat/' + id);
        $('document-link').replaceChildren(link);
      }
    });
  }
  analytics.ready(function () {
    showVisitor();
    if (!state.sending && !state.doc) setStatus('idle', 'Ready: fill the form and start a chat');
  });

  // ---- the snippet's hooks --------------------------------------------------
  window.prechatConfig = {
    onApplied: function (doc) {
      state.doc = doc;
      state.error = null;
      var n = (window.__liveagentCalls || []).length;
      setStatus('applied', 'Applied: ' + (doc.details || []).length + ' details replayed, then liveagent.init (' + n + ' calls)');
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
    // A new visitor: a fresh anonymousId, and a page whose liveagent was not
    // initialised yet.
    Promise.resolve(analytics.reset()).then(function () { location.reload(); });
  });

  function sent(type, path, promise) {
    var item = el('li', { class: 'pending' }, el('b', null, type), el('span', { class: 'muted' }, path), el('code', { class: 'muted' }, '…'));
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

    state.sending = true;
    $('start').disabled = true;
    $('events').replaceChildren();
    setStatus('waiting', 'Waiting: events sent, the snippet long-polls for the pre-chat document…');

    sent('identify', '/v1/i', analytics.identify(userIdFromEmail(v.email), traits));
    if (v.company) {
      var group = { name: v.company };
      if (v.website) group.website = v.website;
      if (v.revenue !== '') group.revenue = Number(v.revenue);
      sent('group', '/v1/g', analytics.group(companyIdFromName(v.company), group));
    }
    var props = { caseStatus: v.caseStatus };
    if (v.subject) props.subject = v.subject;
    sent('track “Live Chat Conversation Started”', '/v1/t', analytics.track('Live Chat Conversation Started', props));
    showVisitor();
  });

  // ---- the agent view ------------------------------------------------------------
  //
  // model reads the recorded calls as Salesforce would: each findOrCreate
  // starts an entity; the details added after it, and the field maps of its
  // object (matched to a detail by label), belong to it.
  function model(calls) {
    var m = { entities: [], name: null, init: null, logging: false, other: [] };
    var cur = null, detail = null;
    calls.forEach(function (c) {
      var a = c.slice(1);
      var ent = c.entity ? m.entities.filter(function (x) { return x.name === c.entity; }).pop() || cur : cur;
      switch (c[0]) {
        case 'findOrCreate':
          cur = { name: String(a[0]), details: [], options: [], maps: [] };
          m.entities.push(cur);
          break;
        case 'addCustomDetail':
          detail = { label: a[0], value: a[1], show: a[2], maps: [], options: [] };
          if (!cur) {
            cur = { name: '(no entity)', details: [], options: [], maps: [] };
            m.entities.push(cur);
          }
          cur.details.push(detail);
          break;
        case 'map':
          var map = { fieldName: a[0], label: a[1], doFind: a[2], isExactMatch: a[3], doCreate: a[4] };
          var target = ent && ent.details.filter(function (d) { return d.label === a[1]; }).pop();
          if (target) target.maps.push(map);
          else if (ent) ent.maps.push(map);
          else m.other.push(c);
          break;
        case 'saveToTranscript':
        case 'showOnCreate':
        case 'linkToEntity':
        case 'doKnowledgeSearch':
          var text = c[0] + '(' + a.map(function (x) { return JSON.stringify(x); }).join(', ') + ')';
          if (c.entity && ent) ent.options.push(text);
          else if (detail) detail.options.push(text);
          else m.other.push(c);
          break;
        case 'setName':
          m.name = a[0];
          break;
        case 'init':
          m.init = a;
          break;
        case 'enableLogging':
          m.logging = true;
          break;
        default:
          m.other.push(c);
      }
    });
    return m;
  }

  function flag(on, label) {
    return el('span', { class: 'flag ' + (on ? 'on' : 'off'), title: label + ': ' + !!on }, on ? '✓' : '–');
  }

  function value(v) {
    if (v === undefined) return el('span', { class: 'muted' }, 'undefined');
    return el('span', { class: typeof v === 'string' ? 'str' : 'lit' }, typeof v === 'string' ? v : JSON.stringify(v));
  }

  function entityCard(e) {
    var body = el('tbody');
    e.details.forEach(function (d) {
      var maps = d.maps.length ? d.maps : [null];
      maps.forEach(function (mp, i) {
        body.appendChild(el('tr', null,
          i === 0 ? el('td', { class: 'label', rowspan: maps.length }, d.label) : null,
          i === 0 ? el('td', { class: 'value', rowspan: maps.length }, value(d.value), d.options.length ? el('div', { class: 'opts' }, d.options.join(' ')) : null) : null,
          i === 0 ? el('td', { class: 'c', rowspan: maps.length }, flag(d.show, 'shown to agent')) : null,
          el('td', { class: 'field' }, mp ? el('code', null, e.name + '.' + mp.fieldName) : el('span', { class: 'muted' }, 'not mapped')),
          el('td', { class: 'c' }, mp ? flag(mp.doFind, 'doFind') : ''),
          el('td', { class: 'c' }, mp ? flag(mp.isExactMatch, 'isExactMatch') : ''),
          el('td', { class: 'c' }, mp ? flag(mp.doCreate, 'doCreate') : '')
        ));
      });
    });
    e.maps.forEach(function (mp) {
      body.appendChild(el('tr', null, el('td', { class: 'label' }, mp.label), el('td', { class: 'muted' }, 'no detail with this label'), el('td'),
        el('td', { class: 'field' }, el('code', null, e.name + '.' + mp.fieldName)),
        el('td', { class: 'c' }, flag(mp.doFind, 'doFind')), el('td', { class: 'c' }, flag(mp.isExactMatch, 'isExactMatch')), el('td', { class: 'c' }, flag(mp.doCreate, 'doCreate'))));
    });
    return el('div', { class: 'entity', 'data-entity': e.name },
      el('div', { class: 'entity-head' },
        el('h3', null, e.name),
        el('code', { class: 'muted' }, 'findOrCreate(' + JSON.stringify(e.name) + ')'),
        e.options.length ? el('span', { class: 'opts' }, e.options.join(' ')) : null),
      el('table', null,
        el('colgroup', null, el('col', { class: 'c-label' }), el('col'), el('col', { class: 'c-show' }), el('col', { class: 'c-field' }),
          el('col', { class: 'c-flag' }), el('col', { class: 'c-flag' }), el('col', { class: 'c-flag' })),
        el('thead', null, el('tr', null,
          el('th', null, 'Detail'), el('th', null, 'Value'), el('th', { class: 'c', title: 'displayToAgent: the agent sees the detail' }, 'Shown'),
          el('th', null, 'Maps to field'), el('th', { class: 'c', title: 'doFind' }, 'Find'), el('th', { class: 'c', title: 'isExactMatch' }, 'Exact'), el('th', { class: 'c', title: 'doCreate' }, 'Create'))),
        body));
  }

  function initCard(m) {
    var rows = [['chatUrl', m.init[0]], ['deploymentId', m.init[1]], ['orgId', m.init[2]]];
    return el('div', { class: 'init', id: 'init-call' },
      el('div', { class: 'init-head' }, el('h3', null, 'liveagent.init'), el('span', { class: 'muted' }, 'last, after the details' + (m.logging ? ', then enableLogging()' : ''))),
      el('dl', null, rows.map(function (r) {
        return el('div', { class: 'kv' }, el('dt', null, r[0]), el('dd', { class: r[0] === 'chatUrl' ? 'chat-url' : '' }, el('code', null, r[1] == null ? 'undefined' : String(r[1]))));
      }).reduce(function (frag, n) { frag.appendChild(n); return frag; }, document.createDocumentFragment())));
  }

  function render() {
    var calls = window.__liveagentCalls || [];
    $('calls-count').textContent = String(calls.length);
    $('calls-json').textContent = calls.length ? '[\n' + calls.map(function (c) { return '  ' + JSON.stringify(c); }).join(',\n') + '\n]' : '[]';
    if (state.doc) $('document-json').textContent = JSON.stringify(state.doc, null, 2);
    $('agent-empty').hidden = calls.length > 0;
    $('agent-body').hidden = calls.length === 0;
    if (!calls.length) return;

    var m = model(calls);
    var name = m.name || (state.doc && state.doc.visitorName);
    $('agent-name').replaceChildren(
      el('span', { class: 'avatar', 'aria-hidden': 'true' }, name ? name.split(/\s+/).map(function (w) { return w.charAt(0); }).join('').slice(0, 2) : '?'),
      el('div', null,
        el('div', { class: 'who' }, name || 'Visitor'),
        el('div', { class: 'muted' }, m.name ? 'setName(' + JSON.stringify(m.name) + ')' : 'no setName call')));
    $('agent-entities').replaceChildren.apply($('agent-entities'), m.entities.map(entityCard));
    $('agent-init').replaceChildren(m.init ? initCard(m) : el('div', { class: 'empty small' }, 'liveagent.init not called yet.'));

    var warnings = (state.doc && state.doc.warnings) || [];
    var extra = m.other.map(function (c) { return 'other call: ' + JSON.stringify(c); });
    var list = warnings.map(function (w) { return typeof w === 'string' ? w : JSON.stringify(w); }).concat(extra);
    $('agent-warnings').hidden = list.length === 0;
    $('agent-warnings').replaceChildren.apply($('agent-warnings'), list.map(function (w) { return el('li', null, w); }));
  }

  window.addEventListener('liveagent-call', render);
  render();
  setStatus('idle', 'Loading analytics-next…');
})();

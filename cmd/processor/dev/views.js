// The views of the demo page (index.html): the agent view of each chat
// product, drawn from what the product's stand-in recorded, and the compare
// panel, drawn from the visitor's pre-chat document. demo.js calls them; they
// only build elements. window.PrechatViews = {el, liveAgent, embeddedChat,
// messaging, compare}: each product view takes the applied document (or null)
// and returns {log, body, warnings}: the recorded calls, the view (null while
// there is nothing to show) and the problems it noticed. Once the document is
// there, each view says whether its userId link is verified, and where each
// Contact and Account detail came from: the verified user's (or company's)
// shared profile, or this browser's own events.
(function () {
  'use strict';

  // el builds an element: attributes, then children (strings become text,
  // arrays are flattened, null and false are skipped).
  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] == null || attrs[k] === false) return;
      if (k === 'class') node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (function add(list) {
      for (var i = 0; i < list.length; i++) {
        var c = list[i];
        if (c == null || c === false) continue;
        if (Array.isArray(c)) add(c);
        else node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
      }
    })(Array.prototype.slice.call(arguments, 2));
    return node;
  }

  function flag(on, label) {
    return el('span', { class: 'flag ' + (on ? 'on' : 'off'), title: label + ': ' + !!on }, on ? '✓' : '–');
  }

  // value shows a value as the product received it: text as text, other
  // JSON values in code style.
  function value(v) {
    if (v === undefined) return el('span', { class: 'muted' }, 'undefined');
    return el('span', { class: typeof v === 'string' ? 'str' : 'lit' }, typeof v === 'string' ? v : JSON.stringify(v));
  }

  function call(name, args) {
    return name + '(' + (args || []).map(function (a) { return JSON.stringify(a); }).join(', ') + ')';
  }

  function initials(name) {
    return name ? name.split(/\s+/).map(function (w) { return w.charAt(0); }).join('').slice(0, 2) : '?';
  }

  function person(name, note) {
    return el('div', { class: 'person', id: 'agent-name' },
      el('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(name)),
      el('div', null, el('div', { class: 'who' }, name || 'Visitor'), el('div', { class: 'muted' }, note)));
  }

  // The pre-chat form's standard fields: Embedded Chat's prepopulated key
  // and Messaging's visible field, by entity and field (mapping/render.go).
  var STANDARD = {
    Contact: { FirstName: ['FirstName', '_firstName'], LastName: ['LastName', '_lastName'], Email: ['Email', '_email'] },
    Case: { Subject: ['Subject', '_subject'] }
  };

  function standard(d, i) {
    var f = (STANDARD[d.entity] || {})[d.fieldName];
    return f && f[i];
  }

  // byDetails lists an object's keys in the order the document's details
  // (the mappings) feed them, the others after: the stored document does
  // not keep the order of its objects' keys.
  function byDetails(obj, doc, keyOf) {
    var keys = Object.keys(obj || {}), out = [];
    ((doc && doc.details) || []).forEach(function (d) {
      var k = keyOf(d);
      if (k && keys.indexOf(k) >= 0 && out.indexOf(k) < 0) out.push(k);
    });
    return out.concat(keys.filter(function (k) { return out.indexOf(k) < 0; }));
  }
  var prepopulatedKey = function (d) { return standard(d, 0); };
  var visibleKey = function (d) { return standard(d, 1); };
  var hiddenKey = function (d) { return d.messagingField; };

  // box is a titled panel: an entity, a settings object, a list of fields.
  function box(attrs, title, note, extra, content) {
    attrs.class = 'entity' + (attrs.class ? ' ' + attrs.class : '');
    return el('div', attrs, el('div', { class: 'entity-head' }, el('h3', null, title), note ? el('code', { class: 'muted' }, note) : null, extra), content);
  }

  // table builds a fixed-layout table: cols are [header, col class, header
  // title], rows arrays of cells (a cell is a <td> or its content).
  function table(cols, rows, rowAttrs) {
    return el('table', null,
      el('colgroup', null, cols.map(function (c) { return el('col', { class: c[1] || null }); })),
      el('thead', null, el('tr', null, cols.map(function (c) { return el('th', { class: c[1] && /flag|show|edit/.test(c[1]) ? 'c' : null, title: c[2] || null }, c[0]); }))),
      el('tbody', null, rows.map(function (cells, i) {
        return el('tr', rowAttrs ? rowAttrs[i] : null, cells.map(function (c) {
          return c && c.tagName === 'TD' ? c : el('td', null, c);
        }));
      })));
  }

  function td(cls, content) {
    return el('td', { class: cls }, content);
  }

  // kv lists [key, value] pairs; a value may be a node.
  function kv(pairs, id) {
    return el('dl', { id: id || null }, pairs.map(function (p) {
      return el('div', { class: 'kv' }, el('dt', null, p[0]),
        el('dd', { class: p[2] || null }, p[1] && p[1].nodeType ? p[1] : el('code', null, p[1] == null ? 'undefined' : String(p[1]))));
    }));
  }

  function initBox(id, title, note, pairs, extra) {
    return el('div', { class: 'init', id: id },
      el('div', { class: 'init-head' }, el('h3', null, title), el('span', { class: 'muted' }, note)),
      kv(pairs), extra);
  }

  // ---- Where a detail came from ---------------------------------------------
  //
  // The trust model (README "Trust model"): a document's detail is verified
  // when its value comes from a verified user's or company's shared profile,
  // which only events the site's server vouched for write; otherwise this
  // browser's own events sent it. Case details always come from the
  // conversation start, this browser's own event, so only Contact and
  // Account details get a badge.
  var SHARED = { Contact: 1, Account: 1 };

  // origin is the badge of the document's detail of entity and label, or
  // null (another entity, no document yet, or a detail the document does
  // not hold, such as the page's own).
  function origin(doc, entity, label) {
    if (!SHARED[entity]) return null;
    var d = ((doc && doc.details) || []).filter(function (x) { return x.entity === entity && x.label === label; })[0];
    if (!d) return null;
    var attrs = { 'data-entity': entity, 'data-label': label };
    if (d.verified) {
      attrs.class = 'origin verified';
      attrs['data-origin'] = 'verified';
      attrs.title = 'From the verified ' + (entity === 'Account' ? 'user’s company' : 'user') + ': the site’s server vouched for this userId';
      return el('span', attrs, 'verified user');
    }
    attrs.class = 'origin browser';
    attrs['data-origin'] = 'browser';
    attrs.title = 'Sent by this browser itself, which no server vouched for';
    return el('span', attrs, 'this browser');
  }

  // identity says which userId the document is linked to and whether the
  // link is verified (doc.userVerified).
  function identity(doc) {
    if (!doc) return null;
    var attrs = { class: 'identity', id: 'agent-identity', 'data-verified': String(!!doc.userVerified) };
    if (!doc.userId) return el('div', attrs, 'No userId: an anonymous visitor, every detail is what this browser sent.');
    return el('div', attrs, 'userId', el('code', null, doc.userId),
      doc.userVerified
        ? [el('span', { class: 'origin verified' }, 'verified link'), 'the site’s server vouched for it: the user’s details from other devices and its company count']
        : [el('span', { class: 'origin browser' }, 'unverified claim'), 'only what this browser sent counts']);
  }

  // ---- Legacy Chat -------------------------------------------------------
  //
  // model reads the recorded liveagent calls as Salesforce would: each
  // findOrCreate starts an entity; the details added after it, and the field
  // maps of its object (matched to a detail by label), belong to it.
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
          var text = call(c[0], a);
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

  var mapCols = [['Find', 'c-flag', 'doFind'], ['Exact', 'c-flag', 'isExactMatch'], ['Create', 'c-flag', 'doCreate']];

  function mapFlags(mp) {
    return [td('c', mp ? flag(mp.doFind, 'doFind') : ''), td('c', mp ? flag(mp.isExactMatch, 'isExactMatch') : ''), td('c', mp ? flag(mp.doCreate, 'doCreate') : '')];
  }

  function legacyEntity(e, doc) {
    var rows = [];
    e.details.forEach(function (d) {
      var maps = d.maps.length ? d.maps : [null];
      maps.forEach(function (mp, i) {
        rows.push([
          i === 0 ? el('td', { class: 'label', rowspan: maps.length }, d.label) : null,
          i === 0 ? el('td', { class: 'value', rowspan: maps.length }, value(d.value), origin(doc, e.name, d.label),
            d.options.length ? el('div', { class: 'opts' }, d.options.join(' ')) : null) : null,
          i === 0 ? el('td', { class: 'c', rowspan: maps.length }, flag(d.show, 'shown to agent')) : null,
          td('field', mp ? el('code', null, e.name + '.' + mp.fieldName) : el('span', { class: 'muted' }, 'not mapped'))
        ].concat(mapFlags(mp)).filter(function (c) { return c !== null; }));
      });
    });
    e.maps.forEach(function (mp) {
      rows.push([td('label', mp.label), td('muted', 'no detail with this label'), td(), td('field', el('code', null, e.name + '.' + mp.fieldName))].concat(mapFlags(mp)));
    });
    return box({ 'data-entity': e.name }, e.name, call('findOrCreate', [e.name]), e.options.length ? el('span', { class: 'opts' }, e.options.join(' ')) : null,
      table([['Detail', 'c-label'], ['Value'], ['Shown', 'c-show', 'displayToAgent: the agent sees the detail'], ['Maps to field', 'c-field']].concat(mapCols), rows));
  }

  function liveAgent(doc) {
    var calls = window.__liveagentCalls || [];
    var out = { log: calls, body: null, warnings: [] };
    if (!calls.length) return out;
    var m = model(calls);
    var name = m.name || (doc && doc.visitorName);
    out.body = [
      person(name, m.name ? call('setName', [m.name]) : 'no setName call'),
      identity(doc),
      m.entities.map(function (e) { return legacyEntity(e, doc); }),
      m.init ? initBox('init-call', 'liveagent.init', 'last, after the details' + (m.logging ? ', then enableLogging()' : ''),
        [['chatUrl', m.init[0], 'chat-url'], ['deploymentId', m.init[1]], ['orgId', m.init[2]]])
        : el('div', { class: 'empty small' }, 'liveagent.init not called yet.')
    ];
    out.warnings = m.other.map(function (c) { return 'other call: ' + JSON.stringify(c); });
    return out;
  }

  // ---- Embedded Service Chat -----------------------------------------------
  //
  // What embedded_svc received: the settings at init and the init
  // arguments, as esw.js recorded them in __eswLog; before init, nothing.
  var ESW_ARGS = ['coreUrl', 'siteUrl', 'gslbUrl', 'orgId', 'deploymentName'];
  var OWN = { extraPrechatFormDetails: 1, extraPrechatInfo: 1, prepopulatedPrechatFields: 1 };

  function embeddedChat(doc) {
    var log = window.__eswLog || [];
    var out = { log: log, body: null, warnings: [] };
    var inits = log.filter(function (c) { return c[0] === 'init'; });
    var args, st, source = '';
    if (inits.length) {
      args = inits[0][1] || [];
      st = inits[0][2] || {};
    } else if (doc && doc.embeddedChat && doc.embeddedChat.init) {
      var i = doc.embeddedChat.init;
      args = [i.coreUrl, i.siteUrl, i.gslbUrl, i.orgId, i.deploymentName, i.options];
      st = doc.embeddedChat.settings;
      source = ' (from the document: embedded_svc.init was not called)';
      out.warnings.push('embedded_svc.init was not called: shown is what the document holds');
    } else {
      return out;
    }
    if (inits.length > 1) out.warnings.push('embedded_svc.init was called ' + inits.length + ' times');
    var details = st.extraPrechatFormDetails || [];
    var byLabel = {};
    details.forEach(function (d) { byLabel[d.label] = d; });
    var pre = st.prepopulatedPrechatFields || {};
    var name = [pre.FirstName, pre.LastName].filter(Boolean).join(' ');
    var own = Object.keys(st).filter(function (k) { return !OWN[k]; });

    var formDetails = box({ id: 'esw-form-details', class: 'object' }, 'extraPrechatFormDetails' + source, details.length + ' details', null,
      table([['Label', 'c-label'], ['Value'], ['Shown', 'c-show', 'displayToAgent'], ['Transcript fields', 'c-field', 'transcriptFields']],
        details.map(function (d) {
          return [td('label', d.label), td('value', value(d.value)), td('c', flag(d.displayToAgent, 'displayToAgent')),
            td('field', (d.transcriptFields || []).length ? d.transcriptFields.map(function (f) { return el('code', { class: 'chip' }, f); }) : el('span', { class: 'muted' }, 'none'))];
        }),
        details.map(function (d) { return { 'data-label': d.label }; })));

    var infos = (st.extraPrechatInfo || []).map(function (e) {
      var opts = [
        el('span', { class: 'opt' }, 'showOnCreate ', flag(e.showOnCreate, 'showOnCreate')),
        el('span', { class: 'opt' }, 'saveToTranscript ', e.saveToTranscript ? el('code', null, e.saveToTranscript) : el('span', { class: 'muted' }, '""')),
        e.linkToEntityName ? el('span', { class: 'opt' }, 'linkTo ', el('code', null, e.linkToEntityName + '.' + e.linkToEntityField)) : null
      ];
      var maps = e.entityFieldMaps || [];
      return box({ 'data-entity': e.entityName }, e.entityName, 'entityName', el('span', { class: 'opts' }, opts),
        table([['Label', 'c-label'], ['Form detail value'], ['Maps to field', 'c-field']].concat(mapCols),
          maps.map(function (mp) {
            var d = byLabel[mp.label];
            return [td('label', mp.label), td('value', d ? [value(d.value), origin(doc, e.entityName, mp.label)] : el('span', { class: 'muted' }, 'no form detail with this label')),
              td('field', el('code', null, e.entityName + '.' + mp.fieldName))].concat(mapFlags(mp));
          })));
    });

    var preKeys = byDetails(pre, doc, prepopulatedKey);
    var prepopulated = el('div', { class: 'fields', id: 'esw-prepopulated' },
      el('div', { class: 'fields-head' }, el('h3', null, 'prepopulatedPrechatFields'), el('span', { class: 'muted' }, 'the visible pre-chat form')),
      preKeys.length ? el('div', { class: 'chips' }, preKeys.map(function (k) {
        return el('span', { class: 'pair', 'data-field': k }, el('span', { class: 'k' }, k), el('span', { class: 'v' }, pre[k]));
      })) : el('div', { class: 'muted' }, 'none: no mapping feeds FirstName, LastName, Email or Subject'));

    var opt = args[5] || {};
    var boot = log.filter(function (c) { return c[0] === 'bootstrapEmbeddedService'; }).length;
    var init = initBox('esw-init', 'embedded_svc.init', inits.length ? 'called ' + (inits.length === 1 ? 'once' : inits.length + ' times') + ' by the snippet, after the settings' : 'not called',
      ESW_ARGS.map(function (k, i) { return [k, args[i], k === 'coreUrl' ? 'core-url' : null]; })
        .concat([['options', el('dl', { class: 'nested' }, Object.keys(opt).map(function (k) {
          return el('div', { class: 'kv' }, el('dt', null, k), el('dd', null, el('code', null, typeof opt[k] === 'string' ? opt[k] : JSON.stringify(opt[k]))));
        }))]]),
      el('div', { class: 'init-foot' },
        own.length ? el('div', null, 'Also on ', el('code', null, 'embedded_svc.settings'), ', set by the page: ',
          own.map(function (k, i) { return [i ? ', ' : '', el('code', null, k + ': ' + JSON.stringify(st[k]))]; })) : null,
        boot ? el('div', null, 'Then ', el('code', null, 'bootstrapEmbeddedService()'), ' from onApplied opened the chat window.') : null));
    if (inits.length) init.setAttribute('data-inits', String(inits.length));

    out.body = [
      person(name, preKeys.length ? 'prepopulatedPrechatFields ' + preKeys.join(', ') : 'no prepopulated name'),
      identity(doc),
      el('h4', { class: 'section' }, 'Form details'),
      formDetails,
      el('h4', { class: 'section' }, 'Records to find or create'),
      el('div', { id: 'esw-entities' }, infos),
      prepopulated,
      init
    ];
    return out;
  }

  // ---- Messaging for Web ------------------------------------------------------
  //
  // What embeddedservice_bootstrap received, from bootstrap.js's
  // __messagingLog (with the page's ["document", status] when the snippet's
  // document request is answered): the timeline of calls and events, and
  // the fields of the last conversation that got them. Until a conversation
  // exists, the steps of a fresh one that are still to come show pending.
  var STEPS = [
    ['init', 'the page’s own init call'],
    ['onEmbeddedMessagingReady', 'ready: pre-chat fields may be set from now'],
    ['document', 'the snippet’s document request answered'],
    ['setHiddenPrechatFields', 'prechatAPI, by the snippet'],
    ['setVisiblePrechatFields', 'prechatAPI, by the snippet'],
    ['launchChat', 'utilAPI.launchChat(), from onApplied'],
    ['onEmbeddedMessagingConversationStarted', 'the conversation started in this tab: no field can be set from now'],
    ['onEmbeddedMessagingConversationOpened', 'the conversation is loaded into this page']
  ];
  var LATER = {
    onEmbeddedMessagingConversationCreated: 'the conversation started (older builds’ name): no field can be set from now',
    onEmbeddedMessagingConversationClosed: 'the conversation ended; once its window closes, the ready event comes again',
    setIdentityToken: 'userVerificationAPI, by the page: the snippet forwards the token',
    clearSession: 'userVerificationAPI, the page’s logout: the snippet forgets the user'
  };

  function count(o) {
    var n = Object.keys(o || {}).length;
    return n + (n === 1 ? ' field' : ' fields');
  }

  function messaging(doc) {
    var log = window.__messagingLog || [];
    var out = { log: log, body: null, warnings: [] };
    if (!log.length) return out;
    (window.__messagingViolations || []).forEach(function (v) {
      out.warnings.push((v[0] === 'setIdentityToken' ? 'userVerificationAPI.' : 'prechatAPI.') + v[0] + ' called ' + v[1]);
    });
    var last = {};
    log.forEach(function (c) { last[c[0]] = c; });
    var hidden = last.setHiddenPrechatFields && last.setHiddenPrechatFields[1];
    var visible = last.setVisiblePrechatFields && last.setVisiblePrechatFields[1];
    var init = last.init;

    // The recorded steps in their order, then the expected ones still to
    // come, while no conversation exists yet.
    var seen = {};
    var items = log.map(function (c, i) {
      seen[c[0]] = true;
      var about = STEPS.filter(function (s) { return s[0] === c[0]; })[0];
      var detail = c[0] === 'init' ? c[2] + ' · ' + c[3]
        : c[0] === 'setHiddenPrechatFields' || c[0] === 'setVisiblePrechatFields' ? count(c[1])
          : c[0] === 'document' ? 'HTTP ' + c[1] : null;
      return el('li', { class: 'done', 'data-step': c[0] },
        el('span', { class: 'n' }, String(i + 1)),
        el('div', null, el('code', { class: 'step' }, c[0]), el('span', { class: 'muted' }, (about ? about[1] : LATER[c[0]] || 'recorded') + (detail ? ' · ' + detail : ''))));
    });
    STEPS.forEach(function (s) {
      if (!seen[s[0]] && !seen.onEmbeddedMessagingConversationOpened) {
        items.push(el('li', { class: 'pending', 'data-step': s[0] }, el('span', { class: 'n' }, ''),
          el('div', null, el('code', { class: 'step' }, s[0]), el('span', { class: 'muted' }, 'not yet'))));
      }
    });

    // The document's detail behind each hidden and visible field.
    var hiddenOf = {}, visibleOf = {};
    ((doc && doc.details) || []).forEach(function (d) {
      if (d.messagingField) hiddenOf[d.messagingField] = d;
      var v = visibleKey(d);
      if (v && !visibleOf[v]) visibleOf[v] = d;
    });
    var badge = function (d) { return d ? origin(doc, d.entity, d.label) : null; };
    var hiddenKeys = byDetails(hidden, doc, hiddenKey);
    var visibleKeys = byDetails(visible, doc, visibleKey);
    var name = visible ? [visible._firstName, visible._lastName].filter(Boolean).map(function (f) { return f.value; }).join(' ') : '';

    out.body = [
      person(name, visible ? 'setVisiblePrechatFields ' + visibleKeys.join(', ') : 'no visible fields set yet'),
      identity(doc),
      el('h4', { class: 'section' }, 'Timeline'),
      el('ol', { class: 'timeline', id: 'messaging-timeline' }, items),
      el('h4', { class: 'section' }, 'Pre-chat fields'),
      box({ id: 'messaging-hidden', class: 'object' }, 'setHiddenPrechatFields', hidden ? count(hidden) + ', channel variables' : 'not called yet', null,
        hiddenKeys.length ? table([['Field', 'c-field'], ['Value'], ['From the mapping', 'c-from']],
          hiddenKeys.map(function (k) {
            var d = hiddenOf[k];
            return [td('field', el('code', null, k)), td('value', [value(hidden[k]), badge(d)]), td('muted', d ? d.entity + ' · ' + d.label : '')];
          }),
          hiddenKeys.map(function (k) { return { 'data-field': k }; }))
          : el('div', { class: 'empty small' }, hidden ? 'No hidden fields: no mapping has a messagingField.' : 'Set after onEmbeddedMessagingReady, once the document arrived.')),
      box({ id: 'messaging-visible', class: 'object' }, 'setVisiblePrechatFields', visible ? count(visible) + ', the visible form' : 'not called yet', null,
        visibleKeys.length ? table([['Field', 'c-field'], ['Value'], ['Editable', 'c-edit', 'isEditableByEndUser']],
          visibleKeys.map(function (k) {
            return [td('field', el('code', null, k)), td('value', [value(visible[k].value), badge(visibleOf[k])]), td('c', el('span', { class: 'editable' }, flag(visible[k].isEditableByEndUser, 'isEditableByEndUser'), visible[k].isEditableByEndUser ? ' yes' : ' no'))];
          }),
          visibleKeys.map(function (k) { return { 'data-field': k }; }))
          : el('div', { class: 'empty small' }, visible ? 'No visible fields: no mapping feeds _firstName, _lastName, _email or _subject.' : 'Set after the hidden fields.')),
      init ? initBox('messaging-init', 'embeddedservice_bootstrap.init', 'the page’s own call, before the ready event',
        [['orgId', init[1]], ['deploymentName', init[2]], ['siteUrl', init[3]], ['scrt2URL', (init[4] || {}).scrt2URL]]) : null
    ];
    return out;
  }

  // ---- Compare ---------------------------------------------------------------
  //
  // Every dev document carries all three renderings: one row per detail,
  // one column per product, then the visible form, the records and the start.
  var PRODUCTS = [
    ['liveAgent', 'Legacy Chat', 'liveagent'],
    ['embeddedChat', 'Embedded Service Chat', 'embedded_svc'],
    ['messaging', 'Messaging for Web', 'embeddedservice_bootstrap']
  ];

  function lit(v) {
    return el('code', { class: typeof v === 'string' ? 'str' : 'lit' }, JSON.stringify(v));
  }

  function tags(mp) {
    return ['doFind', 'isExactMatch', 'doCreate'].filter(function (k) { return mp[k]; }).map(function (k) {
      return el('span', { class: 'tag-flag' }, { doFind: 'find', isExactMatch: 'exact', doCreate: 'create' }[k]);
    });
  }

  function line(label, content) {
    return el('div', { class: 'line' }, label ? el('span', { class: 'line-k' }, label) : null, content);
  }

  function none(text) {
    return el('span', { class: 'muted' }, text);
  }

  function compare(doc, current) {
    if (!doc) return null;
    var ec = doc.embeddedChat, ms = doc.messaging;
    var forms = {};
    ((ec && ec.settings.extraPrechatFormDetails) || []).forEach(function (d) { forms[d.label] = d; });
    var usedPre = {}, usedVis = {};
    var head = el('tr', null, el('th', { class: 'c-detail' }, 'Detail'), PRODUCTS.map(function (p) {
      return el('th', { 'data-product': p[0], class: p[0] === current ? 'current' : null },
        el('div', { class: 'p-name' }, p[1], p[0] === current ? el('span', { class: 'here' }, 'this page') : null), el('code', { class: 'p-global' }, p[2]));
    }));
    function cells(legacy, embedded, msg) {
      return [['liveAgent', legacy], ['embeddedChat', embedded], ['messaging', msg]].map(function (c) {
        return el('td', { 'data-product': c[0], class: c[0] === current ? 'current' : null }, c[1]);
      });
    }
    var notTargeted = function (p) { return none('not targeted: add "' + p + '" to the settings’ products'); };

    var rows = (doc.details || []).map(function (d) {
      var std = STANDARD[d.entity] && STANDARD[d.entity][d.fieldName];
      var legacy = [line(null, [lit(d.value), d.displayToAgent ? null : el('span', { class: 'tag-flag off' }, 'hidden from agent')]),
        line('map', [el('code', null, d.entity + '.' + d.fieldName), tags(d)])];
      var embedded = notTargeted('embeddedChat');
      if (ec) {
        var f = forms[d.label];
        var pre = std && !usedPre[std[0]] && ec.settings.prepopulatedPrechatFields && ec.settings.prepopulatedPrechatFields[std[0]] !== undefined;
        if (pre) usedPre[std[0]] = true;
        embedded = [line(null, f ? lit(f.value) : none('no form detail')), line('map', [el('code', null, d.entity + '.' + d.fieldName), tags(d)]),
          pre ? line('form', el('code', null, std[0])) : null];
      }
      var msg = notTargeted('messaging');
      if (ms) {
        var hid = d.messagingField && ms.hiddenFields && ms.hiddenFields[d.messagingField] !== undefined;
        var vis = std && !usedVis[std[1]] && ms.visibleFields && ms.visibleFields[std[1]];
        if (vis) usedVis[std[1]] = true;
        msg = hid || vis ? [
          hid ? line('hidden', [el('code', null, d.messagingField), ' ', lit(ms.hiddenFields[d.messagingField])]) : null,
          vis ? line('visible', [el('code', null, std[1]), ' ', lit(vis.value), el('span', { class: 'tag-flag' + (vis.isEditableByEndUser ? '' : ' off') }, vis.isEditableByEndUser ? 'editable' : 'read-only')]) : null
        ] : none('not sent: the mapping has no messagingField');
      }
      return el('tr', { 'data-label': d.label },
        el('th', { scope: 'row' }, el('div', { class: 'd-label' }, d.label), el('span', { class: 'ent', 'data-entity': d.entity }, d.entity),
          origin(doc, d.entity, d.label)),
        cells(legacy, embedded, msg));
    });

    var pre = ec && ec.settings.prepopulatedPrechatFields || {};
    var vis = ms && ms.visibleFields || {};
    var ents = (doc.entities || []).map(function (e) { return e.entityName; });
    var chat = doc.chat || {};
    var ecInit = ec && ec.init;
    rows.push(
      el('tr', { class: 'sum' }, el('th', { scope: 'row' }, 'Visitor form'), cells(
        doc.visitorName ? el('code', null, call('setName', [doc.visitorName])) : none('no setName'),
        ec ? (Object.keys(pre).length ? el('code', null, 'prepopulatedPrechatFields: ' + byDetails(pre, doc, prepopulatedKey).join(', ')) : none('nothing prepopulated')) : notTargeted('embeddedChat'),
        ms ? (Object.keys(vis).length ? el('code', null, 'setVisiblePrechatFields: ' + byDetails(vis, doc, visibleKey).join(', ')) : none('no visible fields')) : notTargeted('messaging'))),
      el('tr', { class: 'sum' }, el('th', { scope: 'row' }, 'Records'), cells(
        el('code', null, ents.map(function (e) { return 'findOrCreate(' + JSON.stringify(e) + ')'; }).join(' ')),
        ec ? el('code', null, 'extraPrechatInfo: ' + ents.join(', ')) : notTargeted('embeddedChat'),
        ms ? none('none: your Omni-Channel flow finds or creates them from the hidden fields') : notTargeted('messaging'))),
      el('tr', { class: 'sum' }, el('th', { scope: 'row' }, 'Start'), cells(
        [el('code', null, 'liveagent.init(' + JSON.stringify(chat.deploymentId) + ', …)'), el('div', { class: 'muted' }, 'by the snippet, after all the details')],
        ec ? [el('code', null, 'embedded_svc.init(' + JSON.stringify(ecInit ? ecInit.deploymentName : '') + ', …)'), el('div', { class: 'muted' }, 'by the snippet, after the settings')] : notTargeted('embeddedChat'),
        ms ? [el('code', null, 'embeddedservice_bootstrap.init'), el('div', { class: 'muted' }, 'the page’s own; fields after the ready event, before the conversation starts')] : notTargeted('messaging')))
    );
    return el('table', { class: 'compare', id: 'compare-table' },
      el('colgroup', null, el('col', { class: 'c-detail' }), el('col'), el('col'), el('col')),
      el('thead', null, head), el('tbody', null, rows));
  }

  window.PrechatViews = { el: el, liveAgent: liveAgent, embeddedChat: embeddedChat, messaging: messaging, compare: compare };
})();

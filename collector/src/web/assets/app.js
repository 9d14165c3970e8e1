// Tumen web view: live updates over Server-Sent Events. The page works
// without this script (server-rendered); with it, the Now table follows
// the collector without a reload and the paths graph is fetched again
// when the routes change. Every value goes in through textContent or
// attributes: nothing from the server is parsed as HTML here, except the
// paths graph fragment, which the server rendered and escaped.
'use strict';
(function () {
  var status = document.getElementById('live-status');
  function say(text, on) {
    if (!status) return;
    status.textContent = text;
    status.className = on ? 'on' : '';
  }
  if (!window.EventSource) return;
  var SVG = 'http://www.w3.org/2000/svg';

  function pct(f) { return Math.round(f * 100) + '%'; }

  function sorted(shares) {
    return Object.keys(shares || {}).map(function (k) { return [k, shares[k]]; })
      .sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0); });
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }

  function sharesCell(td, shares, classes) {
    clear(td);
    var v = sorted(shares);
    if (!v.length) {
      var none = document.createElement('span');
      none.className = 'none';
      none.textContent = 'no data';
      td.appendChild(none);
      return;
    }
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'bar');
    svg.setAttribute('viewBox', '0 0 100 10');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    var x = 0;
    v.forEach(function (p) {
      var r = document.createElementNS(SVG, 'rect');
      var w = p[1] * 100;
      r.setAttribute('class', classes[p[0]] || 'up-other');
      r.setAttribute('x', x.toFixed(3));
      r.setAttribute('y', '0');
      r.setAttribute('width', w.toFixed(3));
      r.setAttribute('height', '10');
      var t = document.createElementNS(SVG, 'title');
      t.textContent = p[0] + ' ' + pct(p[1]);
      r.appendChild(t);
      svg.appendChild(r);
      x += w;
    });
    td.appendChild(svg);
    var ul = document.createElement('ul');
    ul.className = 'shares';
    v.forEach(function (p) {
      var li = document.createElement('li');
      li.setAttribute('data-upstream', p[0]);
      li.setAttribute('data-share', String(p[1]));
      var sw = document.createElement('span');
      sw.className = 'swatch ' + (classes[p[0]] || 'up-other');
      var name = document.createElement('span');
      name.className = 'name';
      name.textContent = p[0];
      var pc = document.createElement('span');
      pc.className = 'pct';
      pc.textContent = pct(p[1]);
      li.appendChild(sw);
      li.appendChild(name);
      li.appendChild(document.createTextNode(' '));
      li.appendChild(pc);
      ul.appendChild(li);
    });
    td.appendChild(ul);
  }

  function utc(ms) {
    return new Date(ms).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
  }

  var LABELS = {
    data: 'Data plane', bgp: 'Control plane (BGP)', reachable: 'Reachable',
    vps: 'Vantage points', last_change: 'Last change'
  };

  function cell(tr, field) {
    var td = tr.querySelector('td[data-field="' + field + '"]');
    if (!td) {
      td = document.createElement('td');
      td.setAttribute('data-field', field);
      td.setAttribute('data-label', LABELS[field] || field);
      tr.appendChild(td);
    }
    return td;
  }

  function fillRow(tr, r, d, bgp) {
    sharesCell(cell(tr, 'data'), r.data, d.classes);
    if (bgp) {
      if (r.bgp) sharesCell(cell(tr, 'bgp'), r.bgp, d.classes);
      else sharesCell(cell(tr, 'bgp'), {}, d.classes);
    }
    cell(tr, 'reachable').textContent = r.reachable == null ? '–' : pct(r.reachable);
    cell(tr, 'vps').textContent = String(r.vps);
    var lc = cell(tr, 'last_change');
    clear(lc);
    if (r.last_change_ms == null) {
      lc.textContent = 'none seen';
    } else {
      var t = document.createElement('time');
      t.setAttribute('datetime', new Date(r.last_change_ms).toISOString().slice(0, 19) + 'Z');
      t.textContent = utc(r.last_change_ms);
      lc.appendChild(t);
    }
  }

  function renderNow(d) {
    var table = document.getElementById('now');
    if (!table) return;
    var bgp = table.getAttribute('data-bgp') === 'true';
    var body = table.tBodies[0];
    var seen = {};
    d.rows.forEach(function (r) {
      seen[r.prefix] = true;
      var tr = null;
      for (var i = 0; i < body.rows.length; i++) {
        if (body.rows[i].getAttribute('data-prefix') === r.prefix) { tr = body.rows[i]; break; }
      }
      if (!tr) {
        tr = document.createElement('tr');
        tr.setAttribute('data-prefix', r.prefix);
        var th = document.createElement('th');
        th.setAttribute('scope', 'row');
        var a = document.createElement('a');
        a.setAttribute('href', '/timeline?prefix=' + encodeURIComponent(r.prefix));
        a.textContent = r.prefix;
        th.appendChild(a);
        tr.appendChild(th);
        ['data'].concat(bgp ? ['bgp'] : []).concat(['reachable', 'vps', 'last_change'])
          .forEach(function (f) { cell(tr, f); });
        body.appendChild(tr);
      }
      fillRow(tr, r, d, bgp);
    });
    for (var j = body.rows.length - 1; j >= 0; j--) {
      if (!seen[body.rows[j].getAttribute('data-prefix')]) body.deleteRow(j);
    }
    var foot = table.tFoot && table.tFoot.rows[0];
    if (foot) fillRow(foot, d.all, d, bgp);
    var head = document.getElementById('headline');
    if (head) {
      var v = sorted(d.all.data);
      head.textContent = v.length
        ? 'Over all /24s, from ' + d.all.vps + ' live vantage points: ' +
          v.map(function (p) { return p[0] + ' ' + pct(p[1]); }).join(', ') + '.'
        : 'No live vantage point has traced the target yet.';
    }
    document.body.setAttribute('data-updated', String(d.generated_ms));
  }

  var graphBusy = false;
  function refreshGraph() {
    var box = document.getElementById('paths-graph');
    if (!box || graphBusy) return;
    graphBusy = true;
    fetch(box.getAttribute('data-src'), { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.text(); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString('<div>' + text + '</div>', 'text/html');
        var fresh = doc.body.firstChild;
        clear(box);
        while (fresh && fresh.firstChild) box.appendChild(document.adoptNode(fresh.firstChild));
        document.body.setAttribute('data-graph-updated', String(Date.now()));
      })
      .catch(function () { say('graph update failed; retrying', false); })
      .then(function () { graphBusy = false; });
  }

  var es = new EventSource('/ui/stream');
  es.addEventListener('open', function () { say('live', true); });
  es.addEventListener('error', function () { say('reconnecting…', false); });
  es.addEventListener('now', function (e) {
    try { renderNow(JSON.parse(e.data)); } catch (err) { say('bad update', false); }
  });
  es.addEventListener('paths', function () { refreshGraph(); });
})();

// The fedlora dashboard page: polls /api/state and renders it. Every value goes in through
// textContent or setAttribute (never as markup); the only markup inserted is the server's SVG
// charts, parsed as XML by DOMParser (scripts in it would not run, and the CSP forbids them anyway).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem('fedlora-dashboard-token');
  let etag = null;
  let timer = null;

  // A token can come in the address's fragment (#token=...), which browsers never send to a server.
  const takeToken = () => {
    const given = new URLSearchParams(location.hash.slice(1)).get('token');
    if (!given) return false;
    token = given;
    sessionStorage.setItem('fedlora-dashboard-token', token);
    history.replaceState(null, '', location.pathname);
    return true;
  };
  takeToken();

  const el = (tag, text, attrs) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  };
  const num = (x, digits) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));
  const fillRows = (tbody, rows) => {
    tbody.replaceChildren(
      ...rows.map(({ cells, attrs }) => {
        const tr = el('tr', null, attrs);
        for (const c of cells) tr.append(typeof c === 'object' && c !== null ? c : el('td', c));
        return tr;
      }),
    );
  };
  const showSvg = (figure, svgText) => {
    if (!svgText) return figure.replaceChildren();
    const doc = new DOMParser().parseFromString(svgText, 'image/svg+xml');
    const svg = doc.documentElement;
    if (svg.nodeName !== 'svg' || svg.querySelector('script, foreignObject')) return figure.replaceChildren(el('p', 'chart unavailable'));
    figure.replaceChildren(document.importNode(svg, true));
  };

  function renderOverview(s) {
    const f = s.federation;
    $('federation-id').textContent = f.id;
    $('summary').textContent = `${f.state}: round ${f.currentRound} of ${f.totalRounds}, ${f.completedRounds} committed, ${f.connectedClients} institutions connected (you: ${s.role})`;
    $('summary').setAttribute('data-state', f.state);
    const cur = $('current');
    if (s.current) {
      const c = s.current;
      const bar = el('progress', null, { max: Math.max(1, c.cohort), value: c.reported + c.declined });
      const buffered = c.uploadBufferedBytes === null ? '' : `, ${(c.uploadBufferedBytes / 1048576).toFixed(1)} MiB of uploads in progress`;
      cur.replaceChildren(
        el('strong', `Round ${c.round} (attempt ${c.attempt}): ${c.stage}`),
        el('br'),
        bar,
        el('span', ` ${c.reported} of ${c.cohort} updates received, ${c.declined} declined${buffered}; deadline ${new Date(c.deadline).toLocaleTimeString()}`),
      );
    } else cur.replaceChildren(el('span', f.state === 'training' ? 'Between rounds.' : `No round in progress (${f.state}).`));
    fillRows(
      $('rounds').tBodies[0],
      s.rounds.map((r) => ({
        attrs: { 'data-round': r.round, 'data-attempt': r.attempt, 'data-status': r.status },
        cells: [r.round, r.attempt, el('td', r.status, { class: `status-${r.status}` }), r.participants, r.survivors ?? '-', r.cohort, r.declined, r.deadline ? new Date(r.deadline).toLocaleTimeString() : '-', r.seconds.toFixed(1), r.reason ?? ''],
      })),
    );
    const inst = $('institutions');
    inst.replaceChildren(...(f.enrolled ? [el('h3', 'Enrolled institutions'), el('p', f.enrolled.length ? f.enrolled.join(', ') : 'any client may join (no enrolment list)')] : []));
  }

  function renderTraining(s) {
    $('training').hidden = !s.training;
    if (!s.training) return;
    const when = s.training.find((t) => t.evaluated)?.evaluated;
    $('training-note').textContent = when ? `Held-out metrics are of the shared adapter ${when}${when.startsWith('at') ? ' (reported by the institutions on their own held-out data)' : ''}.` : 'No held-out evaluation reported.';
    showSvg($('loss-chart'), s.charts.loss);
    showSvg($('mcq-chart'), s.charts.mcq);
    fillRows(
      $('training-table').tBodies[0],
      s.training.map((t) => ({ attrs: { 'data-round': t.round }, cells: [t.round, num(t.trainLoss, 4), num(t.evalLoss, 4), num(t.perplexity, 2), t.mcqAccuracy === null || t.mcqAccuracy === undefined ? '-' : `${(100 * t.mcqAccuracy).toFixed(1)}%`] })),
    );
  }

  function renderPrivacy(s) {
    const p = s.privacy;
    const badge = $('verified');
    badge.textContent = p.ledgers.length === 0 ? 'no ledger yet' : p.verified ? 'ledgers verified' : 'VERIFICATION FAILED';
    badge.className = `badge ${p.verified ? 'ok' : 'bad'}`;
    showSvg($('epsilon-chart'), s.charts.epsilon);
    showSvg($('budget-chart'), s.charts.budget);
    fillRows(
      $('ledgers').tBodies[0],
      p.ledgers.map((l) => {
        const last = l.series.points.at(-1);
        const eps = last ? last.epsilon : 0;
        return {
          attrs: { 'data-ledger': l.label, 'data-valid': l.valid },
          cells: [l.label, l.series.unit, l.entries, num(eps, 4), l.series.delta ?? '-', l.series.budget ?? '-', l.series.budget ? `${Math.round((100 * eps) / l.series.budget)}%` : '-', l.valid ? 'yes' : `NO: ${l.problems.join('; ')}`],
        };
      }),
    );
    fillRows(
      $('privacy-rounds').tBodies[0],
      p.ledgers.flatMap((l) => l.series.points.map((pt) => ({ attrs: { 'data-ledger': l.label, 'data-round': pt.round, 'data-epsilon': pt.epsilon }, cells: [l.label, pt.round, num(pt.epsilon, 4), num(pt.increment, 4), pt.mechanism, pt.noise] }))),
    );
    $('refusals').replaceChildren(
      ...(p.refusals.length ? p.refusals.map((r) => el('li', `${r.ledger}, round ${r.round}: ${r.kind === 'refused' ? 'refused' : 'released nothing'}${r.count > 1 ? ` (${r.count} attempts)` : ''}: ${r.note}`, { 'data-kind': r.kind, 'data-round': r.round })) : [el('li', 'none')]),
    );
  }

  function renderSecurity(s) {
    $('security').hidden = !s.security;
    if (!s.security) return;
    fillRows($('security-table').tBodies[0], s.security.counts.length ? s.security.counts.map((c) => ({ attrs: { 'data-reason': c.reason }, cells: [c.reason, c.count] })) : [{ cells: ['none', 0] }]);
  }

  function askForToken(message) {
    $('main').hidden = true;
    $('login').hidden = false;
    $('login-message').textContent = message;
    $('summary').textContent = 'Not signed in.';
  }

  async function poll() {
    clearTimeout(timer);
    let next = 2000;
    try {
      const headers = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (etag) headers['if-none-match'] = etag;
      const res = await fetch('/api/state', { headers, cache: 'no-store' });
      if (res.status === 401 || res.status === 403) {
        askForToken(res.status === 401 ? 'This dashboard needs a bearer token (or a client certificate).' : 'Your certificate or token may not read this dashboard.');
        return;
      }
      if (res.status === 200) {
        const s = await res.json();
        etag = res.headers.get('etag');
        next = s.pollMs || next;
        $('login').hidden = true;
        $('main').hidden = false;
        renderOverview(s);
        renderTraining(s);
        renderPrivacy(s);
        renderSecurity(s);
        document.body.setAttribute('data-rounds', s.rounds.length);
      }
      $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch {
      $('updated').textContent = `Coordinator unreachable since ${new Date().toLocaleTimeString()}; retrying`;
      next = 5000;
    }
    timer = setTimeout(poll, next);
  }

  window.addEventListener('hashchange', () => {
    if (!takeToken()) return;
    etag = null;
    poll();
  });
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token').value.trim();
    sessionStorage.setItem('fedlora-dashboard-token', token);
    etag = null;
    poll();
  });
  poll();
})();

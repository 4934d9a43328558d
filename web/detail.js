// detail.js - the node detail panel: every field of GET /api/v1/nodes/{id},
// the error chain as nested causes, a fiber's wait site, a service's restart
// history with each past chain, a process service's log tail (followed live)
// and resource usage (sampled by the server at each refresh),
// links to the subtree's trace, and the cancel / restart controls.
//
// The panel's skeleton is in index.html; this module fills it. Sections are
// repainted only when their part of the answer changed, so an error chain the
// operator is reading does not jump under them on every refresh.

import { statusText } from './api.js';
import { formatDuration, wallMs, STATE_ICON, OUTCOME_ICON } from './model.js';

const REFRESH_MS = 2000;         // while shown: times, counters, wait site move on
const EVENT_REFRESH_MS = 300;    // after an event for the node: soon, but coalesced
const LOG_POLL_MS = 1000;
const LOG_FIRST = 65536;         // bytes of old output shown when the tail opens
const LOG_KEEP = 262144;         // bytes of output kept in the page

export function mountDetail(panel, { api, onSelect, onClose, onFocusTimeline }) {
  const $ = (id) => panel.querySelector(`[data-testid="${id}"]`);
  const byId = (id) => panel.querySelector(`#${id}`);
  const els = {
    empty: byId('detail-empty'),
    body: byId('detail-body'),
    missing: byId('detail-missing'),
    name: $('detail-name'),
    id: $('detail-id'),
    state: $('detail-state'),
    outcome: $('detail-outcome'),
    restarts: $('detail-restarts'),
    kind: byId('detail-kind'),
    fields: byId('detail-fields'),
    errorSection: byId('detail-error'),
    chain: $('error-chain'),
    waitSection: byId('detail-wait'),
    wait: $('wait-site'),
    serviceSection: byId('detail-service'),
    service: byId('detail-service-fields'),
    historySection: byId('detail-history'),
    history: $('history'),
    logSection: byId('detail-log'),
    log: $('log-tail'),
    logNote: byId('detail-log-note'),
    cancel: $('btn-cancel'),
    restart: $('btn-restart'),
    result: $('action-result'),
    traceChrome: $('detail-trace'),
    traceOtlp: $('detail-trace-otlp'),
    focus: byId('btn-timeline-focus'),
    close: byId('detail-close'),
  };
  const confirm = document.querySelector('[data-testid="confirm-dialog"]');

  let shownId = null;
  let node = null;               // the last answer for shownId
  let painted = {};              // section -> JSON it was painted from
  let refreshTimer = 0;
  let eventTimer = 0;
  let ticket = 0;                // the newest refresh; older answers are dropped
  const log = { id: null, offset: null, timer: 0, bytes: 0 };

  // --- showing a node -------------------------------------------------------

  function show(id) {
    if (id !== shownId) {
      shownId = id;
      node = null;
      painted = {};
      els.result.textContent = '';
      stopLog();
      els.log.replaceChildren();
      els.empty.hidden = true;
      els.missing.hidden = true;
      els.body.hidden = false;
      els.id.textContent = String(id);
      els.name.textContent = '…';
      const trace = `/api/v1/trace?root=${id}`;
      els.traceChrome.href = `${trace}&format=chrome`;
      els.traceChrome.download = `arbor-${id}-chrome.json`;
      els.traceOtlp.href = `${trace}&format=otlp`;
      els.traceOtlp.download = `arbor-${id}-otlp.json`;
    }
    refresh();
  }

  function close() {
    shownId = null;
    node = null;
    ticket++;
    clearTimeout(refreshTimer);
    clearTimeout(eventTimer);
    stopLog();
    els.body.hidden = true;
    els.missing.hidden = true;
    els.empty.hidden = false;
  }

  async function refresh() {
    clearTimeout(refreshTimer);
    const id = shownId;
    if (id === null) return;
    const mine = ++ticket;
    let gone = false;
    try {
      const n = await api.get(`/api/v1/nodes/${id}`);
      if (mine === ticket) paint(n);
    } catch (e) {
      // A 404: finished and evicted. Other failures (the server restarting)
      // leave the last answer up and try again.
      gone = e.status === 404;
      if (mine === ticket && gone) showMissing(id);
    }
    if (mine === ticket && !gone) refreshTimer = setTimeout(refresh, REFRESH_MS);
  }

  function showMissing(id) {
    stopLog();
    els.body.hidden = true;
    els.missing.hidden = false;
    els.missing.textContent = `Node ${id} is not in the tree: it finished and is no longer retained, or never existed.`;
  }

  // An event concerns the shown node: refresh soon, once for a burst.
  function onEvent(ev) {
    if (shownId === null || ev.node_id !== shownId || eventTimer) return;
    eventTimer = setTimeout(() => {
      eventTimer = 0;
      refresh();
    }, EVENT_REFRESH_MS);
  }

  // --- painting -------------------------------------------------------------

  // Repaints a section only when the data it shows changed.
  function section(name, data, draw) {
    const key = JSON.stringify(data ?? null);
    if (painted[name] === key) return;
    painted[name] = key;
    draw(data);
  }

  function paint(n) {
    node = n;
    els.name.textContent = n.name;
    els.id.textContent = String(n.id);
    els.kind.textContent = n.kind;
    els.kind.className = `kind kind-${n.kind}`;
    els.state.textContent = `${STATE_ICON[n.state] || ''} ${n.state}`;
    els.state.className = `state state-${n.state}`;
    els.state.dataset.state = n.state;
    els.outcome.textContent = n.outcome === 'NONE' ? 'no outcome yet' : `${OUTCOME_ICON[n.outcome]} ${n.outcome}`;
    els.outcome.className = `outcome outcome-${n.outcome}`;
    els.outcome.dataset.outcome = n.outcome;
    els.restarts.textContent = String(n.restarts);

    const supervised = n.kind === 'service' || n.kind === 'supervisor';
    els.restart.disabled = !supervised;
    els.restart.title = supervised ? 'Restart: same id, restart count + 1' : 'Only services and supervisors restart';
    els.cancel.disabled = n.kind === 'root';
    els.cancel.title = n.kind === 'root' ? 'The root is not cancelled: shut the runtime down instead' : 'Cancel this node and its subtree';

    section('fields', fieldsOf(n), drawFields);
    section('error', n.error, (err) => {
      els.errorSection.hidden = !err;
      els.chain.replaceChildren(...(err ? [renderError(err, onSelect)] : []));
    });
    drawWait(n.fiber);           // small, and its "for how long" moves on
    section('service', n.service, drawService);
    section('history', n.history, drawHistory);

    if (n.service && n.service.is_process) startLog(n.id);
    else els.logSection.hidden = true;
  }

  // The node's own fields, as rows of the definition list.
  function fieldsOf(n) {
    const attrs = Object.entries(n.attributes || {}).map(([k, v]) => `${k}=${v}`).join(', ');
    return [
      ['parent', n.parent_id ? { link: n.parent_id } : 'none (the root)'],
      ['created', when(n.created)],
      ['started', when(n.started)],
      ['stop requested', when(n.stop_requested)],
      ['finished', when(n.finished)],
      ['cancel requested', n.cancel_requested ? 'yes' : 'no'],
      ['stuck', n.stuck ? '⚠ yes: stayed STOPPING past its shutdown timeout' : 'no'],
      ['children', `${n.children} now, ${n.live_children} live, ${n.children_total} ever`],
      ['attributes', attrs || 'none'],
    ].filter(([, v]) => v !== null);
  }

  function drawFields(rows) {
    els.fields.replaceChildren(...definitions(rows, onSelect));
  }

  function drawWait(f) {
    els.waitSection.hidden = !f;
    if (!f) return;
    const parts = [];
    if (f.wait) {
      const since = wallMs(f.since);
      parts.push(el('span', 'wait-what', f.wait));
      if (f.file) parts.push(' at ', el('code', 'loc', `${f.file}:${f.line}`));
      if (since !== null) parts.push(` for ${formatDuration(Date.now() - since)}`);
    } else if (f.stack_size > 0) {
      parts.push('not waiting: running, or about to run');
    } else {
      parts.push('no fiber: not started yet, or finished');
    }
    const lines = [el('div', '', '')];
    if (f.stack_size > 0) lines.push(el('div', 'muted', `stack ${kib(f.stack_high_water)} used of ${kib(f.stack_size)}`));
    els.wait.replaceChildren(...lines);
    els.wait.firstChild.append(...parts);
  }

  function drawService(s) {
    els.serviceSection.hidden = !s;
    if (!s) return;
    const rows = [
      ['restart', s.restart],
      ['phase', s.phase],
      ['program', s.is_process ? (s.pid ? `running, pid ${s.pid}` : 'not running') : 'no (in-process)'],
      ['daemon', s.daemon ? 'yes' : 'no'],
      ['incarnation', s.incarnation_id ? { link: s.incarnation_id } : 'none yet'],
      ['last backoff', `${s.last_backoff_ms} ms`],
      ['tasks', `${s.tasks_finished} of ${s.tasks_total} finished`],
    ];
    // Children start in order, each STARTED before the next: say which sibling
    // holds this one back ("db: STARTING"); docs/config.md, "Start order".
    const w = s.waiting_for;
    if (w) rows.splice(2, 0, ['waiting for', { testid: 'waiting-for', text: `${w.name}: ${w.state} (#${w.id})` }]);
    if (s.is_process) rows.push(['usage', { testid: 'usage', text: usageText(s.usage) }]);
    // How the program is executed, when the config says (user, umask, rlimits ...).
    if (s.exec) rows.push(['runs as', { testid: 'exec', text: execText(s.exec) }]);
    // max_memory and what the run's readings saw, when the config sets one.
    if (s.memory_limit) rows.push(['memory limit', { testid: 'memory-limit', text: memoryLimitText(s.memory_limit) }]);
    // Health probes (docs/config.md, "Health probes"): what each one checks, its
    // verdict, failures in a row and its last error.
    for (const role of ['liveness', 'readiness']) {
      const p = s.probes && s.probes[role];
      if (p) rows.push([`${role} probe`, { testid: `probe-${role}`, text: probeText(role, p) }]);
    }
    if (s.probes && s.probes.readiness) rows.push(['ready', { testid: 'service-ready', text: s.ready ? 'yes' : 'no' }]);
    if (s.strategy) rows.push(['strategy', `${s.strategy}, at most ${s.intensity} restarts in ${s.period_ms} ms`]);
    els.service.replaceChildren(...definitions(rows, onSelect));
  }

  function drawHistory(h) {
    els.historySection.hidden = !h;
    if (!h) return;
    if (h.length === 0) {
      els.history.replaceChildren(el('li', 'muted', 'no failures kept'));
      return;
    }
    els.history.replaceChildren(...h.map((entry) => {
      const li = el('li', 'history-entry', '');
      li.setAttribute('data-testid', 'history-entry');
      const head = el('div', 'history-head', '');
      head.append(el('time', '', localTime(entry.time)), ' incarnation ', nodeLink(entry.incarnation_id, onSelect),
        entry.restarted ? ` · restarted after ${entry.backoff_ms} ms` : ' · not restarted');
      li.append(head);
      if (entry.error) {
        const chain = el('div', 'error-chain', '');
        chain.setAttribute('data-testid', 'history-error');
        chain.append(renderError(entry.error, onSelect));
        li.append(chain);
      }
      return li;
    }));
  }

  // --- the log tail ---------------------------------------------------------

  function startLog(id) {
    els.logSection.hidden = false;
    if (log.id === id) return;
    stopLog();
    log.id = id;
    log.offset = null;
    log.bytes = 0;
    els.log.replaceChildren();
    els.logNote.textContent = '';
    pollLog();
  }

  function stopLog() {
    clearTimeout(log.timer);
    log.timer = 0;
    log.id = null;
  }

  // Reads what is new since the last read, once a second while shown. The
  // first read asks only for the size, so the tail opens on the newest
  // output rather than on the oldest the ring keeps.
  async function pollLog() {
    const id = log.id;
    if (id === null) return;
    try {
      if (log.offset === null) {
        const head = await api.get(`/api/v1/nodes/${id}/log?offset=0&limit=0`);
        if (id !== log.id) return;
        log.offset = Math.max(head.offset, head.size - LOG_FIRST);
      }
      if (!document.hidden) {
        const r = await api.get(`/api/v1/nodes/${id}/log?offset=${log.offset}&limit=65536`);
        if (id !== log.id) return;
        appendLog(r);
      }
    } catch {
      // A 404 ends the panel (refresh shows it); a network error retries.
    }
    if (id === log.id) log.timer = setTimeout(pollLog, LOG_POLL_MS);
  }

  function appendLog(r) {
    log.offset = r.next_offset;
    if (!r.data && !r.missed) return;
    const pre = els.log;
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    if (r.missed > 0) pre.append(el('span', 'log-missed', `[… ${r.missed} bytes overwritten before they were read]\n`));
    if (r.data) pre.append(document.createTextNode(r.data));
    log.bytes += r.data.length;
    // Keep the page's copy bounded: drop the oldest pieces.
    while (log.bytes > LOG_KEEP && pre.firstChild) {
      log.bytes -= pre.firstChild.textContent.length;
      pre.firstChild.remove();
    }
    els.logNote.textContent = `${r.size} bytes captured`;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  // --- controls -------------------------------------------------------------

  async function act(verb) {
    if (!node) return;
    const what = `${node.kind} "${node.name}" (id ${node.id})`;
    const question = verb === 'cancel'
      ? `Cancel ${what} and its whole subtree?`
      : `Restart ${what}? It keeps its id; its restart count goes up by one.`;
    if (!(await ask(confirm, question))) return;
    const id = node.id;
    els.result.textContent = `${verb}: sending…`;
    els.result.dataset.ok = '';
    let res;
    try {
      res = await api.post(`/api/v1/nodes/${id}/${verb}`);
    } catch (e) {
      els.result.textContent = `${verb} failed: ${e.message}`;
      els.result.dataset.ok = 'false';
      return;
    }
    els.result.textContent = resultText(res);
    els.result.dataset.ok = String(res.status >= 200 && res.status < 300);
    if (id === shownId) refresh();
  }

  els.cancel.addEventListener('click', () => act('cancel'));
  els.restart.addEventListener('click', () => act('restart'));
  els.close.addEventListener('click', () => {
    close();
    if (onClose) onClose();
  });
  els.focus.addEventListener('click', () => {
    if (shownId !== null && onFocusTimeline) onFocusTimeline(shownId);
  });

  return {
    show,
    close,
    onEvent,
    get id() {
      return shownId;
    },
  };
}

// "202 Accepted", "409 finished: node 12 has finished".
export function resultText({ status, body }) {
  if (status >= 200 && status < 300) {
    let extra = '';
    if (body && body.restarts !== undefined) extra = ` · restarts ${body.restarts}`;
    else if (body && body.state) extra = ` · now ${body.state}`;
    return `${status} ${statusText(status)}${extra}`;
  }
  const e = body && body.error;
  return e ? `${status} ${e.code}: ${e.message}` : `${status} ${statusText(status)}`;
}

// One link of a chain, its cause nested inside it and, for an error group,
// its members' chains listed in it: the outermost error reads first and each
// "caused by" sits one level in, as the error's text form prints it.
export function renderError(err, onSelect) {
  const box = el('div', 'error-link', '');
  box.setAttribute('data-testid', 'error-link');
  const head = el('div', 'error-head', '');
  const code = el('span', 'error-code', err.name);
  code.title = `code ${err.code}`;
  head.append(code, ' ', el('span', 'error-message', err.message));
  box.append(head);
  const where = el('div', 'error-where', '');
  where.append(err.file ? el('code', 'loc', `${err.file}:${err.line}`) : el('span', 'muted', 'no source location'));
  if (err.function) where.append(' in ', el('code', '', `${err.function}()`));
  if (err.node_id) where.append(' · node ', nodeLink(err.node_id, onSelect));
  box.append(where);
  if (err.errors && err.errors.length) {
    const list = el('ol', 'error-group', '');
    for (const member of err.errors) {
      const li = document.createElement('li');
      li.append(renderError(member, onSelect));
      list.append(li);
    }
    box.append(el('div', 'caused-by', `${err.errors.length} member error${err.errors.length > 1 ? 's' : ''}, in order:`), list);
  }
  if (err.errors_omitted) box.append(el('div', 'muted', `… and ${err.errors_omitted} more not shown`));
  if (err.cause) {
    box.append(el('div', 'caused-by', 'caused by'), renderError(err.cause, onSelect));
  } else if (err.truncated) {
    box.append(el('div', 'muted', '… the rest of the chain was cut off'));
  }
  return box;
}

// Shows dialog with message; resolves true for OK, false for No, Escape or
// a click outside.
export function ask(dialog, message) {
  return new Promise((resolve) => {
    dialog.querySelector('.dialog-text').textContent = message;
    const ok = dialog.querySelector('[data-testid="confirm-ok"]');
    const no = dialog.querySelector('[data-testid="confirm-no"]');
    let answer = false;
    const onOk = () => {
      answer = true;
      dialog.close();
    };
    const onNo = () => dialog.close();
    const onClose = () => {
      ok.removeEventListener('click', onOk);
      no.removeEventListener('click', onNo);
      dialog.removeEventListener('close', onClose);
      resolve(answer);
    };
    ok.addEventListener('click', onOk);
    no.addEventListener('click', onNo);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    no.focus();                  // the harmless answer is the default one
  });
}

// <dt>/<dd> pairs of [label, value] rows; a value {link: id} is a node link,
// {testid, text} text the tests find by its data-testid.
// (Not `v.link`: every string has a link() method, the old HTML helper.)
function definitions(rows, onSelect) {
  return rows.flatMap(([k, v]) => {
    const dd = document.createElement('dd');
    if (typeof v === 'object' && v !== null && v.testid) {
      dd.setAttribute('data-testid', v.testid);
      dd.textContent = v.text;
    } else if (typeof v === 'object' && v !== null) dd.append(nodeLink(v.link, onSelect));
    else dd.textContent = String(v);
    return [el('dt', '', k), dd];
  });
}

function nodeLink(id, onSelect) {
  const a = el('a', 'node-link', `#${id}`);
  a.href = `#/node/${id}`;
  a.addEventListener('click', (e) => {
    e.preventDefault();
    onSelect(id);
  });
  return a;
}

// "14:03:22 (3m 10s ago)", or null when it has not happened.
function when(text) {
  const ms = wallMs(text);
  if (ms === null) return null;
  return `${localTime(text)} (${formatDuration(Date.now() - ms)} ago)`;
}

function localTime(text) {
  const ms = wallMs(text);
  return ms === null ? '' : new Date(ms).toLocaleTimeString();
}

// A process service's figures (GET /api/v1/nodes/{id}, service.usage),
// sampled by the server at each refresh of the panel: "2 processes, 3 threads ·
// CPU 1.25 s, 0.4 % · 24.1 MiB resident · 12 fds".
export function usageText(u) {
  if (!u) return 'no program running';
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 'es'}`;
  return `${plural(u.processes, 'process')}, ${u.threads} thread${u.threads === 1 ? '' : 's'}`
    + ` · CPU ${u.cpu_seconds.toFixed(2)} s, ${u.cpu_percent.toFixed(1)} %`
    + ` · ${mib(u.rss_bytes)} resident · ${u.open_fds} fd${u.open_fds === 1 ? '' : 's'}`
    + (u.partial ? ' · partial: too many processes to read them all' : '');
}

// A process service's memory limit (service.memory_limit): "512.0 MiB for 2000 ms ·
// now 38.2 MiB, 2 processes, read every 100 ms · over it for 300 ms · 1 run ended by it".
export function memoryLimitText(m) {
  const parts = [mib(m.max_memory) + (m.max_memory_for_ms ? ` for ${m.max_memory_for_ms} ms` : '')];
  if (m.readings > 0)
    parts.push(`now ${mib(m.rss_bytes)}, ${m.processes} process${m.processes === 1 ? '' : 'es'}, read every ${m.check_ms} ms`);
  if (m.over_ms > 0) parts.push(`over it for ${m.over_ms} ms`);
  if (m.exceeded > 0) parts.push(`${m.exceeded} run${m.exceeded === 1 ? '' : 's'} ended by it`);
  return parts.join(' · ');
}

// A service's health probe (service.probes.liveness / .readiness): "http
// http://127.0.0.1:8080/healthz every 1000 ms · failing: 2 failures in a row (of 3)
// · last error: HTTP GET ...: status 503".
export function probeText(role, p) {
  const verdict = !p.active ? 'not running'
    : p.passing ? (role === 'readiness' ? 'ready' : 'passing')
    : (role === 'readiness' ? 'not ready' : 'failing');
  const parts = [`${p.kind} ${p.target} every ${p.interval_ms} ms`, verdict];
  if (p.failures_in_row > 0) parts.push(`${p.failures_in_row} failure${p.failures_in_row === 1 ? '' : 's'} in a row (of ${p.failure_threshold})`);
  parts.push(`${p.successes} passed, ${p.failures} failed`);
  if (p.last_error) parts.push(`last error: ${p.last_error.message}`);
  return parts.join(' · ');
}

// A process service's execution settings (service.exec, as resolved when it was
// added): "user nobody (uid 65534) · gid 65534 · groups 65534, 4 · umask 0027 ·
// nofile 100/200 · core 0 · env_file /etc/api.env".
export function execText(e) {
  const parts = [];
  if (e.uid !== null) parts.push(e.user ? `user ${e.user} (uid ${e.uid})` : `uid ${e.uid}`);
  if (e.gid !== null) parts.push(e.group ? `group ${e.group} (gid ${e.gid})` : `gid ${e.gid}`);
  if (e.groups) parts.push(`groups ${e.groups.length ? e.groups.join(', ') : 'none'}`);
  if (e.umask) parts.push(`umask ${e.umask}`);
  for (const [name, l] of Object.entries(e.rlimits || {}))
    parts.push(`${name} ${l.soft === l.hard ? l.soft : `${l.soft}/${l.hard}`}`);
  if (e.env_file) parts.push(`env_file ${e.env_file}`);
  return parts.length ? parts.join(' · ') : 'as arbor';
}

function mib(n) {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : kib(n);
}

function kib(n) {
  return n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

function el(tag, cls, content) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (content) e.textContent = content;
  return e;
}

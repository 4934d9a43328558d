// tree.js - the tree view: virtual scrolling over the model (model.js).
//
// Only the rows in sight are in the DOM: a spacer sized to rows x ROW_H gives
// the scrollbar its length, and a small pool of absolutely positioned row
// elements is filled from the flattened list, once per animation frame
// however many changes came in. That keeps 10,000 nodes as cheap as 50.

import { flatten, makeMatcher, formatDuration, STATE_ICON, OUTCOME_ICON, KIND_LABEL, MAX_NODES } from './model.js';

export const ROW_H = 28;         // px; fixed, so row i sits at i * ROW_H
const OVERSCAN = 8;              // rows rendered above and below the viewport

// The view. Owns the scroll container's content and the selection cursor;
// tells the page about clicks and Enter through callbacks.
export class TreeView {
  constructor(container, model, { onOpen, onExpand }) {
    this.el = container;
    this.model = model;
    this.onOpen = onOpen;        // (id) => void: show its detail
    this.onExpand = onExpand;    // (id) => void: it was expanded (load its children)
    this.collapsed = new Set();
    this.layout = 0;             // bumped on expand/collapse/filter: the flat list changes
    this.matcher = null;
    this.flat = [];
    this.flatKey = '';
    this.selected = null;
    this.rowIndex = new Map();   // id -> index in flat
    this.spacer = document.createElement('div');
    this.spacer.className = 'tree-spacer';
    this.el.append(this.spacer);
    this.pool = [];
    this.el.addEventListener('scroll', () => this.requestRender());
    this.el.addEventListener('click', (e) => this.onClick(e));
    this.el.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.requestRender()).observe(this.el);
    this.frame = 0;
    this.afterRender = null;     // () => void, once per painted frame
    this.pendingReveal = null;   // {id, center}: to reveal once it is loaded
  }

  setFilter(f) {
    this.matcher = makeMatcher(f);
    this.layout++;
    this.requestRender();
  }

  // What the flat list depends on: structure and layout, and states too
  // while a filter is on.
  flatKeyNow() {
    return `${this.model.structure}/${this.layout}/${this.matcher ? this.model.changed : 0}`;
  }

  // Coalesces any number of changes into one render per animation frame, so
  // a thousand events a second cost sixty renders, not a thousand.
  requestRender() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  // Rows come and go above and within the viewport while the loader fills
  // the tree and events add nodes. The selected row, when in view, keeps its
  // place on screen (else the row at the top does), so what the operator
  // reads, or a deep-linked row, does not slide away. Scrolled to the very
  // top with nothing selected in view, the view stays at the top.
  rebuildFlat() {
    const top = this.el.scrollTop;
    const anchor = this.anchorRow(top);
    this.flat = flatten(this.model, this.collapsed, this.matcher);
    this.rowIndex.clear();
    this.flat.forEach((item, i) => {
      if (item.id !== undefined) this.rowIndex.set(item.id, i);
    });
    this.spacer.style.height = `${this.flat.length * ROW_H}px`;
    if (anchor && this.rowIndex.has(anchor.id)) {
      const now = this.rowIndex.get(anchor.id);
      if (now !== anchor.idx) this.el.scrollTop = top + (now - anchor.idx) * ROW_H;
    }
  }

  // {id, idx}: the row to hold in place across a rebuild, or null.
  anchorRow(top) {
    const sel = this.rowIndex.get(this.selected);
    const first = Math.floor(top / ROW_H);
    const last = Math.floor((top + this.el.clientHeight) / ROW_H) - 1;
    if (sel !== undefined && sel >= first && sel <= last) return { id: this.selected, idx: sel };
    const item = top > 0 ? this.flat[first] : undefined;
    return item && item.id !== undefined ? { id: item.id, idx: first } : null;
  }

  // The flat list is rebuilt when what it depends on changed since.
  ensureFlat() {
    const key = this.flatKeyNow();
    if (key !== this.flatKey) {
      this.rebuildFlat();
      this.flatKey = key;
    }
  }

  render() {
    const p = this.pendingReveal;
    if (p && p.id === this.selected && this.model.nodes.has(p.id)) this.reveal(p.id, p.center);
    this.ensureFlat();
    const view = this.el.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.el.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(this.flat.length, Math.ceil((this.el.scrollTop + view) / ROW_H) + OVERSCAN);
    const need = Math.max(0, last - first);
    while (this.pool.length < need) {
      const row = document.createElement('div');
      row.className = 'row';
      row.setAttribute('role', 'treeitem');
      this.pool.push(row);
      this.el.append(row);
    }
    const now = Date.now();
    for (let i = 0; i < this.pool.length; i++) {
      const row = this.pool[i];
      if (i < need) {
        row.hidden = false;
        this.fillRow(row, this.flat[first + i], first + i, now);
      } else if (!row.hidden) {
        blank(row);
        row.hidden = true;
      }
    }
    if (this.rowIndex.has(this.selected)) this.el.setAttribute('aria-activedescendant', `row-${this.selected}`);
    else this.el.removeAttribute('aria-activedescendant');
    this.el.dataset.nodes = String(this.model.size);
    this.el.dataset.rows = String(this.flat.length);
    if (this.afterRender) this.afterRender();
  }

  // Paints one row element for item, only if what it shows changed; the time
  // in state is the only part that moves by itself, and is set on its own.
  fillRow(row, item, idx, now) {
    if (item.more !== undefined) {
      const full = this.model.size >= MAX_NODES;  // the loader stopped: say so
      const key = `more/${item.more}/${item.count}/${idx}/${full}`;
      if (row.dataset.key === key) return;
      blank(row);
      row.dataset.key = key;
      row.className = 'row row-more';
      row.style.transform = `translateY(${idx * ROW_H}px)`;
      const why = full ? `not loaded: the page holds ${MAX_NODES} nodes at most` : 'loading';
      row.replaceChildren(this.indent(item.depth), text('span', 'more-text', `… ${item.count} more (${why})`));
      row.dataset.more = String(item.more);
      // A placeholder in view is a request for those children.
      this.onExpand(item.more);
      return;
    }
    const rec = this.model.nodes.get(item.id);
    const expanded = !this.collapsed.has(rec.id) || this.matcher !== null;
    const key = `${rec.id}/${rec.version}/${idx}/${item.depth}/${expanded}/${this.selected === rec.id}/${item.match}`;
    if (row.dataset.key === key) {
      setSince(row, rec, now);
      return;
    }
    blank(row);
    row.dataset.key = key;
    row.id = `row-${rec.id}`;
    row.className = 'row';
    row.classList.toggle('selected', this.selected === rec.id);
    row.classList.toggle('context', item.match === false);
    row.setAttribute('data-testid', 'tree-row');
    row.dataset.id = String(rec.id);
    row.dataset.kind = rec.kind;
    row.dataset.state = rec.state;
    row.dataset.outcome = rec.outcome;
    row.dataset.match = String(item.match !== false);
    row.setAttribute('aria-level', String(item.depth + 1));
    row.setAttribute('aria-selected', String(this.selected === rec.id));
    const hasKids = rec.children.length > 0 || rec.unloaded > 0;
    if (hasKids) row.setAttribute('aria-expanded', String(expanded));
    else row.removeAttribute('aria-expanded');
    row.style.transform = `translateY(${idx * ROW_H}px)`;

    const toggle = text('span', 'toggle', hasKids ? (expanded ? '▾' : '▸') : '');
    toggle.dataset.toggle = '1';
    const parts = [this.indent(item.depth), toggle,
      text('span', `kind kind-${rec.kind}`, KIND_LABEL[rec.kind] || rec.kind),
      testid(text('span', 'name', rec.name), 'row-name')];
    // Beside the name, so the columns to its right stay aligned.
    if (rec.stuck) parts.push(testid(text('span', 'stuck', '⚠ stuck'), 'row-stuck'));
    if (rec.waitingFor) parts.push(testid(text('span', 'waiting', `waiting for ${rec.waitingFor.name}`), 'row-waiting'));
    parts.push(
      testid(badge(`state state-${rec.state}`, STATE_ICON[rec.state], rec.state), 'row-state'),
      rec.outcome === 'NONE' ? text('span', 'outcome', '')
        : badge(`outcome outcome-${rec.outcome}`, OUTCOME_ICON[rec.outcome], rec.outcome),
      testid(text('span', rec.restarts > 0 ? 'restarts' : 'restarts zero', `↻ ${rec.restarts}`), 'row-restarts'),
    );
    const time = text('span', 'since', '');
    time.title = 'time in state';
    parts.push(time);
    row.title = `${rec.kind} ${rec.name} (id ${rec.id})`;
    row.replaceChildren(...parts);
    setSince(row, rec, now);
  }

  indent(depth) {
    const pad = document.createElement('span');
    pad.className = 'indent';
    pad.style.setProperty('--depth', String(depth));  // the step is the stylesheet's
    return pad;
  }

  // Called once a second: the times in state move on.
  tick() {
    this.requestRender();
  }

  // scroll: bring the row into view; center: in the middle of the view when
  // it was out of sight (a jump from a link), rather than at the edge (a step
  // of the keyboard's cursor).
  select(id, { scroll = true, center = false } = {}) {
    this.selected = id;
    if (scroll) this.reveal(id, center);
    this.requestRender();
  }

  // Expands id's ancestors and scrolls its row into view.
  // A node the loader has not brought yet (a deep link into a big tree) is
  // revealed when it arrives, unless the cursor moved on meanwhile.
  reveal(id, center = false) {
    this.pendingReveal = null;
    for (const a of this.model.path(id).slice(0, -1)) if (this.collapsed.delete(a)) this.layout++;
    this.ensureFlat();
    const idx = this.rowIndex.get(id);
    if (idx === undefined) {
      if (!this.model.nodes.has(id)) this.pendingReveal = { id, center };
      return;
    }
    const top = idx * ROW_H;
    const view = this.el.clientHeight;
    const out = top < this.el.scrollTop || top + ROW_H > this.el.scrollTop + view;
    if (out && center) this.el.scrollTop = Math.max(0, top - Math.floor((view - ROW_H) / 2));
    else if (top < this.el.scrollTop) this.el.scrollTop = top;
    else if (top + ROW_H > this.el.scrollTop + view) this.el.scrollTop = top + ROW_H - view;
  }

  setExpanded(id, open) {
    const rec = this.model.nodes.get(id);
    if (!rec) return;
    if (open) {
      this.collapsed.delete(id);
      if (rec.unloaded > 0) this.onExpand(id);
    } else {
      this.collapsed.add(id);
    }
    this.layout++;
    this.requestRender();
  }

  collapseAll() {
    for (const rec of this.model.nodes.values())
      if (rec.children.length > 0 && rec.id !== this.model.rootId) this.collapsed.add(rec.id);
    this.layout++;
    this.requestRender();
  }

  expandAll() {
    this.collapsed.clear();
    this.layout++;
    this.requestRender();
  }

  onClick(e) {
    const row = e.target.closest('.row');
    if (!row || row.dataset.id === undefined) return;
    const id = Number(row.dataset.id);
    if (e.target.closest('[data-toggle]')) {
      this.setExpanded(id, this.collapsed.has(id));
      this.select(id, { scroll: false });
      return;
    }
    this.select(id, { scroll: false });
    this.onOpen(id);
  }

  // Arrows move the cursor, Left/Right collapse and expand (or step to the
  // parent / first child, as file trees do), Home/End/PageUp/PageDown jump,
  // Enter opens the detail.
  onKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const idx = this.rowIndex.has(this.selected) ? this.rowIndex.get(this.selected) : -1;
    const page = Math.max(1, Math.floor(this.el.clientHeight / ROW_H) - 1);
    const rec = this.model.nodes.get(this.selected);
    switch (e.key) {
      case 'ArrowDown': this.moveTo(idx + 1); break;
      case 'ArrowUp': this.moveTo(idx < 0 ? 0 : idx - 1); break;
      case 'PageDown': this.moveTo(idx + page); break;
      case 'PageUp': this.moveTo(Math.max(0, idx - page)); break;
      case 'Home': this.moveTo(0); break;
      case 'End': this.moveTo(this.flat.length - 1); break;
      case 'ArrowRight':
        if (!rec) break;
        if (this.collapsed.has(rec.id)) this.setExpanded(rec.id, true);
        else if (rec.children.length > 0) this.moveTo(idx + 1);
        break;
      case 'ArrowLeft':
        if (!rec) break;
        if (!this.collapsed.has(rec.id) && rec.children.length > 0 && !this.matcher) this.setExpanded(rec.id, false);
        else if (this.model.nodes.has(rec.parentId)) this.select(rec.parentId);
        break;
      case 'Enter':
        if (rec) this.onOpen(rec.id);
        break;
      default:
        return;
    }
    e.preventDefault();
  }

  // The tree takes the keyboard from the search box: the cursor goes to the
  // first match when the selected node is not among the rows shown.
  focusFirstMatch() {
    this.el.focus();
    this.ensureFlat();
    if (this.rowIndex.has(this.selected)) return;
    const i = this.flat.findIndex((item) => item.id !== undefined && item.match !== false);
    if (i >= 0) this.select(this.flat[i].id);
  }

  // Moves the cursor to the node row at or after idx (placeholders are skipped).
  moveTo(idx) {
    const n = this.flat.length;
    if (n === 0) return;
    let i = Math.min(Math.max(idx, 0), n - 1);
    const step = idx > (this.rowIndex.get(this.selected) ?? -1) ? 1 : -1;
    while (i >= 0 && i < n && this.flat[i].id === undefined) i += step;
    if (i < 0 || i >= n) return;
    this.select(this.flat[i].id);
  }
}

// Strips a pooled row of what made it a node's row, so a hidden or
// placeholder row is never found as one (tests look rows up by data-id).
function blank(row) {
  row.dataset.key = '';
  row.className = 'row';
  for (const a of ['data-testid', 'data-id', 'data-kind', 'data-state', 'data-outcome', 'data-match',
    'data-more', 'id', 'aria-level', 'aria-selected', 'aria-expanded', 'title']) row.removeAttribute(a);
}

function setSince(row, rec, now) {
  const el = row.lastElementChild;
  const t = rec.since === null ? '' : formatDuration(now - rec.since);
  if (el && el.textContent !== t) el.textContent = t;
}

function text(tag, cls, content) {
  const el = document.createElement(tag);
  el.className = cls;
  el.textContent = content;
  return el;
}

// An icon and a word: the icon carries the meaning where the word is hidden
// (narrow screens), the word everywhere else.
function badge(cls, icon, word) {
  const el = text('span', cls, '');
  el.title = word;
  el.append(text('span', 'icon', icon || ''), ' ', text('span', 'word', word));
  return el;
}

function testid(el, id) {
  el.setAttribute('data-testid', id);
  return el;
}

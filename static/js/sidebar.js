// Sidebar: conversations grouped by date (the server groups them), search over titles and
// messages as you type, pin, delete with an "Undo" toast, and the keyboard shortcuts
// (Ctrl/Cmd+K search, Ctrl/Cmd+Shift+O new chat).

import { requestJSON, strings } from './net.js';
import { showToast, toast } from './toast.js';

const SEARCH_URL = '/chat/api/conversations/search/';
const HOME_URL = '/chat/';
const PLACEHOLDER_ID = '00000000-0000-0000-0000-000000000000';
const SEARCH_DELAY_MS = 150;
const PENDING_UNDO_KEY = 'assistant-pending-undo';

let S = {};
const els = {};

// ------------------------------------------------------------------ groups

function currentConversationId() {
  const messages = document.getElementById('messages');
  return messages ? messages.dataset.conversationId || '' : '';
}

function items() {
  return els.groups ? Array.from(els.groups.querySelectorAll('li.conversation-item')) : [];
}

function findItem(id) {
  return items().find((li) => li.dataset.id === id) || null;
}

function markActive(id) {
  for (const li of items()) {
    const active = Boolean(id) && li.dataset.id === id;
    li.classList.toggle('active', active);
    const link = li.querySelector('.conversation-link');
    if (link) {
      if (active) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }
}

// The list of a group, created (in its place: pinned first, then today) when missing.
function groupList(key, label) {
  let section = els.groups.querySelector(`section.conversation-group[data-group="${key}"]`);
  if (!section) {
    section = document.createElement('section');
    section.className = 'conversation-group';
    section.dataset.group = key;
    const title = document.createElement('h2');
    title.className = 'sidebar-section-title';
    title.textContent = label;
    const ul = document.createElement('ul');
    ul.className = 'conversation-list';
    section.append(title, ul);
    const pinned = els.groups.querySelector('section.conversation-group[data-group="pinned"]');
    if (key === 'pinned' || !pinned) els.groups.prepend(section);
    else pinned.after(section);
  }
  els.groups.querySelectorAll('.conversation-empty').forEach((e) => e.remove());
  return section.querySelector('ul');
}

function dropEmptyGroups() {
  els.groups.querySelectorAll('section.conversation-group').forEach((section) => {
    if (!section.querySelector('li.conversation-item')) section.remove();
  });
}

// Most recently active first, as the server orders them; a pinned one stays with the pinned.
function moveToTop(li) {
  const pinned = li.dataset.pinned === 'true';
  const ul = pinned ? groupList('pinned', S.pinned) : groupList('today', S.today);
  if (ul.firstElementChild !== li) ul.prepend(li);
  dropEmptyGroups();
}

function setTitle(li, title) {
  const link = li.querySelector('.conversation-link');
  if (link) {
    link.textContent = title;
    link.title = title;
  }
  const form = li.querySelector('.rename-form');
  const input = form && form.querySelector('input[name="title"]');
  if (input && form.hidden) {
    input.value = title;
    input.defaultValue = title;
  }
}

// A conversation just created on this page (its first message or file).
export function sidebarAdd(conversation) {
  if (!els.groups || !conversation || !conversation.id) return;
  let li = findItem(conversation.id);
  if (!li) {
    const template = document.getElementById('conversation-item-template');
    if (!template || !template.content.firstElementChild) return;
    li = template.content.firstElementChild.cloneNode(true);
    li.dataset.id = conversation.id;
    li.querySelectorAll('form').forEach((form) => {
      form.setAttribute('action', (form.getAttribute('action') || '').replace(PLACEHOLDER_ID, conversation.id));
    });
    li.querySelector('.conversation-link').setAttribute('href', conversation.url || `/chat/c/${conversation.id}/`);
    setTitle(li, conversation.title || '');
  }
  moveToTop(li);
  markActive(conversation.id);
}

// A conversation that just got a message (or a new title).
export function sidebarTouch(id, title) {
  const li = findItem(id);
  if (!li) return;
  if (title) setTitle(li, title);
  moveToTop(li);
}

// Re-read the grouped list from the server (after unpinning or an undo: the server places it).
async function refreshGroups() {
  const response = await fetch(HOME_URL, { credentials: 'same-origin' });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), 'text/html');
  const fresh = page.getElementById('conversation-list');
  if (!fresh) return;
  els.groups.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
  markActive(currentConversationId());
}

// ----------------------------------------------------------- delete + undo

async function undo(pending) {
  try {
    const restored = await requestJSON(pending.undoUrl, { method: 'POST' });
    if (pending.wasCurrent) {
      window.location.assign(restored.url);
      return;
    }
    await refreshGroups();
    showToast(S.restored);
  } catch (err) {
    showToast(err.message || String(err));
  }
}

function offerUndo(pending) {
  const seconds = Math.max(1, Math.round((pending.expires - Date.now()) / 1000));
  toast(S.deleted, { action: S.undo, onAction: () => undo(pending), seconds });
}

async function deleteConversation(li, form) {
  const id = li.dataset.id;
  const wasCurrent = id === currentConversationId();
  let data;
  try {
    data = await requestJSON(form.getAttribute('action'), { method: 'POST' });
  } catch (err) {
    showToast(err.message || String(err));
    return;
  }
  const pending = {
    id,
    undoUrl: data.undo_url,
    wasCurrent,
    expires: Date.now() + (Number(data.undo_seconds) || 8) * 1000,
  };
  if (wasCurrent) {
    // Its page is gone: offer the undo on the new-chat page.
    try {
      window.sessionStorage.setItem(PENDING_UNDO_KEY, JSON.stringify(pending));
    } catch {
      /* no storage: the conversation stays deleted */
    }
    window.location.assign(HOME_URL);
    return;
  }
  li.remove();
  dropEmptyGroups();
  offerUndo(pending);
}

function resumePendingUndo() {
  let pending = null;
  try {
    pending = JSON.parse(window.sessionStorage.getItem(PENDING_UNDO_KEY) || 'null');
    window.sessionStorage.removeItem(PENDING_UNDO_KEY);
  } catch {
    pending = null;
  }
  if (pending && pending.undoUrl && pending.expires > Date.now()) offerUndo(pending);
}

// -------------------------------------------------------------------- pin

async function togglePin(li) {
  const pinned = li.dataset.pinned !== 'true';
  try {
    await requestJSON(li.querySelector('.pin-form').getAttribute('action'), { method: 'POST', body: { pinned } });
  } catch (err) {
    showToast(err.message || String(err));
    return;
  }
  await refreshGroups();
}

// ----------------------------------------------------------------- search

function highlighted(text, query) {
  const span = document.createElement('span');
  span.className = 'search-snippet';
  const at = query ? text.toLowerCase().indexOf(query.toLowerCase()) : -1;
  if (at < 0) {
    span.textContent = text;
    return span;
  }
  const mark = document.createElement('mark');
  mark.textContent = text.slice(at, at + query.length);
  span.append(text.slice(0, at), mark, text.slice(at + query.length));
  return span;
}

function renderResults(query, results) {
  const ul = els.results.querySelector('.search-result-list');
  ul.replaceChildren();
  for (const r of results) {
    const li = document.createElement('li');
    li.className = 'conversation-item search-result';
    li.dataset.id = r.id;
    if (r.id === currentConversationId()) li.classList.add('active');
    const a = document.createElement('a');
    a.className = 'conversation-link';
    a.href = r.url;
    a.title = r.title;
    a.append(highlighted(r.title, query));
    a.firstChild.className = 'search-title';
    if (r.snippet) a.append(highlighted(r.snippet, query));
    li.append(a);
    ul.append(li);
  }
  els.results.querySelector('.search-empty').hidden = results.length > 0;
}

function showSearch(active) {
  els.results.hidden = !active;
  els.groups.hidden = active;
}

function wireSearch() {
  const input = els.search;
  let timer = null;
  let controller = null;
  const run = async () => {
    const query = input.value.trim();
    if (controller) controller.abort();
    if (!query) {
      showSearch(false);
      return;
    }
    controller = new AbortController();
    try {
      const data = await requestJSON(`${SEARCH_URL}?q=${encodeURIComponent(query)}`, { signal: controller.signal });
      if (input.value.trim() !== query) return; // typed on meanwhile
      renderResults(query, data.results || []);
      showSearch(true);
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      showToast(err.message || String(err));
    }
  };
  input.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(run, SEARCH_DELAY_MS);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      input.value = '';
      showSearch(false);
      const prompt = document.getElementById('prompt');
      if (prompt) prompt.focus();
    } else if (event.key === 'Enter') {
      const first = els.results.querySelector('.conversation-link');
      if (first && !els.results.hidden) {
        event.preventDefault();
        window.location.assign(first.href);
      }
    } else if (event.key === 'ArrowDown') {
      const first = els.results.querySelector('.conversation-link');
      if (first && !els.results.hidden) {
        event.preventDefault();
        first.focus();
      }
    }
  });
}

// -------------------------------------------------------------- shortcuts

function openSidebarIfCollapsed() {
  const toggle = document.getElementById('sidebar-toggle');
  if (toggle && window.getComputedStyle(toggle).display !== 'none' && !document.body.classList.contains('sidebar-open')) {
    toggle.click();
  }
}

function wireShortcuts() {
  const mac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || '');
  if (mac) {
    document.querySelectorAll('kbd[data-shortcut], .shortcut-hint').forEach((kbd) => {
      kbd.textContent = kbd.textContent.replace('Ctrl', '⌘').replace('Shift', '⇧');
    });
  }
  document.addEventListener('keydown', (event) => {
    const mod = event.ctrlKey || event.metaKey;
    if (!mod || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === 'k' && !event.shiftKey && els.search) {
      event.preventDefault();
      openSidebarIfCollapsed();
      els.search.focus();
      els.search.select();
    } else if (key === 'o' && event.shiftKey) {
      event.preventDefault();
      window.location.assign(HOME_URL);
    }
  });
}

// ------------------------------------------------------------------ init

export function initSidebar() {
  els.groups = document.getElementById('conversation-list');
  els.search = document.getElementById('conversation-search');
  els.results = document.getElementById('search-results');
  S = strings('ux-strings', {
    deleted: 'Conversation deleted.',
    undo: 'Undo',
    restored: 'Conversation restored.',
    pinned: 'Pinned',
    today: 'Today',
  });
  if (els.groups) {
    // Capture phase: runs before any other submit handler on the list (no confirm dialog:
    // a delete can be undone).
    els.groups.addEventListener(
      'submit',
      (event) => {
        const form = event.target;
        const li = form.closest && form.closest('li.conversation-item');
        if (!li) return;
        if (form.classList.contains('delete-form')) {
          event.preventDefault();
          event.stopImmediatePropagation();
          deleteConversation(li, form);
        } else if (form.classList.contains('pin-form')) {
          event.preventDefault();
          event.stopImmediatePropagation();
          togglePin(li);
        }
      },
      true,
    );
  }
  if (els.search && els.results && els.groups) wireSearch();
  wireShortcuts();
  resumePendingUndo();
}

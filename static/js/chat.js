// Chat page behaviour: composer, attached files, streaming answers over SSE, sidebar controls.
// Model output is only ever inserted as text; the one innerHTML assignment uses the
// server-sanitised `html` of the `done` event.

import { initMessages, enhanceMessage, ensureToolbar } from './messages.js';
import { initSidebar, sidebarAdd, sidebarTouch } from './sidebar.js';
import { csrfToken } from './net.js';

const API = {
  conversations: '/chat/api/conversations/',
  messages: (conversationId) => `/chat/api/c/${encodeURIComponent(conversationId)}/messages/`,
  stream: (messageId) => `/chat/api/messages/${encodeURIComponent(messageId)}/stream/`,
  stop: (messageId) => `/chat/api/messages/${encodeURIComponent(messageId)}/stop/`,
  retry: (messageId) => `/chat/api/messages/${encodeURIComponent(messageId)}/retry/`,
  attachments: (conversationId) => `/chat/api/c/${encodeURIComponent(conversationId)}/attachments/`,
  attachmentDelete: (attachmentId) => `/chat/api/attachments/${encodeURIComponent(attachmentId)}/delete/`,
};
const NEAR_BOTTOM_PX = 120;
const TITLE_WAIT_MS = 30000;

const DEFAULT_STRINGS = {
  retry: 'Retry',
  sources: 'Sources',
  sourceUnavailable: 'Source no longer available',
  lostConnection: 'Lost the connection to the server.',
  network: 'Could not reach the server. Check your connection and try again.',
  session: 'Your session has expired. Reload the page and sign in again.',
  server: 'Something went wrong. Please try again.',
  stopped: 'Stopped.',
  stopFailed: 'Could not stop the answer on the server.',
  confirmDelete: 'Delete this conversation?',
  newConversation: 'New conversation',
  showSidebar: 'Show conversations',
  hideSidebar: 'Hide conversations',
  attachFailed: 'Could not attach the file.',
  removeFile: 'Remove',
  uploading: 'Attaching…',
};

const S = { ...DEFAULT_STRINGS };

const els = {};
const state = {
  busy: false, // a request or a stream is in flight
  source: null, // the open EventSource
  article: null, // the assistant article being streamed
  assistantId: null,
  attachments: [], // files in the composer: {name, size, id, status: uploading|ready|error, error, promise, li}
  conversationPromise: null, // the conversation being created for the first message or file
};

// ---------------------------------------------------------------- helpers


class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function postJSON(url, body = {}) {
  return post(url, JSON.stringify(body), { 'Content-Type': 'application/json' });
}

// A multipart POST (the browser sets the Content-Type with its boundary).
async function postForm(url, formData) {
  return post(url, formData, {});
}

async function post(url, body, headers) {
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        ...headers,
        Accept: 'application/json',
        'X-CSRFToken': csrfToken(),
        'X-Requested-With': 'XMLHttpRequest',
      },
      body,
    });
  } catch {
    throw new ApiError(S.network, 0);
  }
  let data = null;
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    let message = data && typeof data.error === 'string' && data.error ? data.error : null;
    if (!message && data && typeof data.detail === 'string') message = data.detail;
    if (!message) message = response.status === 401 || response.status === 403 ? S.session : S.server;
    throw new ApiError(message, response.status);
  }
  if (data === null) {
    // A redirect to the login page answers 200 with HTML.
    throw new ApiError(response.redirected ? S.session : S.server, response.status);
  }
  return data;
}

function parseData(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return null;
  }
}

function isNearBottom() {
  const t = els.thread;
  if (!t) return true;
  return t.scrollHeight - t.scrollTop - t.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  const t = els.thread;
  if (t) t.scrollTop = t.scrollHeight;
}

function autogrow() {
  const p = els.prompt;
  if (!p) return;
  p.style.height = 'auto';
  p.style.height = `${p.scrollHeight}px`;
}

function showComposerError(message) {
  if (!els.composerError) return;
  els.composerError.textContent = message;
  els.composerError.hidden = false;
}

function hideComposerError() {
  if (!els.composerError) return;
  els.composerError.textContent = '';
  els.composerError.hidden = true;
}

function setBusy(busy, streaming = false) {
  state.busy = busy;
  if (els.send) els.send.disabled = busy;
  if (els.stop) els.stop.hidden = !(busy && streaming);
  if (els.composer) els.composer.classList.toggle('is-busy', busy);
}

// ------------------------------------------------------------ rendering

function removeEmptyState() {
  const empty = document.getElementById('empty-state');
  if (empty) empty.remove();
}

function createArticle(role, id, status) {
  const article = document.createElement('article');
  article.className = `message message-${role}`;
  article.dataset.messageId = id || '';
  article.dataset.status = status;
  const body = document.createElement('div');
  body.className = 'message-body';
  article.append(body);
  return article;
}

function humanSize(bytes) {
  const size = Number(bytes) || 0;
  if (size < 1024) return `${size} ${size === 1 ? 'byte' : 'bytes'}`;
  const units = ['KB', 'MB', 'GB'];
  let value = size / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

// One file chip: its name (a link once it is sent) and size.
function makeChip(file, href) {
  const li = document.createElement('li');
  li.className = 'attachment-chip';
  if (file.id) li.dataset.id = file.id;
  const name = document.createElement(href ? 'a' : 'span');
  name.className = 'attachment-name';
  name.textContent = file.name || '';
  name.title = file.name || '';
  if (href) name.setAttribute('href', href);
  const size = document.createElement('span');
  size.className = 'attachment-size';
  size.textContent = humanSize(file.size);
  li.append(name, ' ', size);
  return li;
}

function appendUserMessage(message, fallbackText) {
  const article = createArticle('user', message && message.id, 'complete');
  const text = message && typeof message.content === 'string' ? message.content : fallbackText;
  article.querySelector('.message-body').textContent = text;
  const files = message && Array.isArray(message.attachments) ? message.attachments : [];
  if (files.length) {
    const ul = document.createElement('ul');
    ul.className = 'attachment-chips';
    for (const file of files) ul.append(makeChip(file, file.url || ''));
    article.prepend(ul);
  }
  els.messages.append(article);
  ensureToolbar(article);
  return article;
}

function makeCaret() {
  const caret = document.createElement('span');
  caret.className = 'streaming-caret';
  caret.setAttribute('aria-hidden', 'true');
  return caret;
}

function appendAssistantMessage(id, question) {
  const article = createArticle('assistant', id, 'streaming');
  article.querySelector('.message-body').append(makeCaret());
  article.dataset.question = question;
  els.messages.append(article);
  ensureToolbar(article);
  return article;
}

function removeCaret(article) {
  article.querySelectorAll('.streaming-caret').forEach((c) => c.remove());
}

function clearErrors(article) {
  article.querySelectorAll('.message-error, .retry-button, .message-note').forEach((e) => e.remove());
}

function showMessageError(article, message, retryable) {
  clearErrors(article);
  const p = document.createElement('p');
  p.className = 'message-error';
  p.setAttribute('role', 'alert');
  p.textContent = message || S.server;
  const body = article.querySelector('.message-body');
  if (body) body.after(p);
  else article.append(p);
  if (retryable) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'retry-button';
    button.textContent = S.retry;
    p.after(button);
  }
}

function showNote(article, text) {
  const p = document.createElement('p');
  p.className = 'message-note';
  p.textContent = text;
  const after = article.querySelector('.message-error') || article.querySelector('.message-body');
  after.after(p);
}

function renderSources(article, citations) {
  article.querySelectorAll('ol.sources').forEach((ol) => ol.remove());
  if (!Array.isArray(citations) || citations.length === 0) return;
  const ol = document.createElement('ol');
  ol.className = 'sources';
  ol.setAttribute('aria-label', S.sources);
  for (const c of citations) {
    if (!c || typeof c !== 'object') continue;
    const li = document.createElement('li');
    li.className = 'source';
    li.dataset.n = String(c.n ?? '');
    if (c.available === false) {
      // A source the reader may no longer see: an unlabeled marker, no title, place or passage.
      li.classList.add('source-unavailable');
      li.textContent = `[${c.n ?? ''}] ${S.sourceUnavailable}`;
      ol.append(li);
      continue;
    }
    const a = document.createElement('a');
    const href = c.document_url || c.url || '';
    if (href) a.setAttribute('href', href);
    a.textContent = `[${c.n ?? ''}] ${c.title ?? ''}`;
    const loc = document.createElement('span');
    loc.className = 'source-location';
    loc.textContent = c.location || c.connector || '';
    const quote = document.createElement('blockquote');
    quote.className = 'source-quote';
    quote.textContent = c.quote ?? '';
    li.append(a, ' ', loc, quote);
    ol.append(li);
  }
  article.append(ol);
}

// Give each [n] chip its source quote as a tooltip.
function applyCiteTitles(article) {
  const quotes = new Map();
  article.querySelectorAll('ol.sources li.source').forEach((li) => {
    const quote = li.querySelector('.source-quote');
    const link = li.querySelector('a');
    const text = (quote && quote.textContent.trim()) || (link && link.textContent.trim()) || '';
    if (text) quotes.set(li.dataset.n, text);
  });
  article.querySelectorAll('.message-body a.cite, .message-body .cite').forEach((chip) => {
    const text = quotes.get(chip.dataset.n);
    if (text) chip.setAttribute('title', text);
  });
}

// ------------------------------------------------------------- sidebar

function addConversationToSidebar(conversation) {
  sidebarAdd(conversation); // grouped, pinned first: sidebar.js
}

function updateConversationTitle(id, title) {
  if (!title) return;
  sidebarTouch(id, title); // to the top of its group, as the server orders them
  if (els.title) els.title.textContent = title;
  const suffix = document.title.includes(' · ') ? document.title.slice(document.title.lastIndexOf(' · ')) : '';
  document.title = `${title}${suffix || ''}`;
}

function openRename(li) {
  const form = li.querySelector('.rename-form');
  if (!form) return;
  const input = form.querySelector('input[name="title"]');
  li.classList.add('renaming');
  form.hidden = false;
  if (input) {
    input.focus();
    input.select();
  }
}

function closeRename(li, restore = true) {
  const form = li.querySelector('.rename-form');
  if (!form) return;
  const input = form.querySelector('input[name="title"]');
  if (restore && input) input.value = input.defaultValue;
  form.hidden = true;
  li.classList.remove('renaming');
}

// Rename in place; the page (and anything typed in the composer) stays as it is.
async function renameConversation(li, form, title) {
  const input = form.querySelector('input[name="title"]');
  try {
    const data = await postJSON(form.action, { title });
    input.defaultValue = data.title;
    closeRename(li, false);
    if (li.dataset.id === els.messages.dataset.conversationId) updateConversationTitle(li.dataset.id, data.title);
    else sidebarTouch(li.dataset.id, data.title);
  } catch (error) {
    input.setCustomValidity(error.message);
    input.reportValidity();
    input.addEventListener('input', () => input.setCustomValidity(''), { once: true });
  }
}

function wireSidebar() {
  if (els.list) {
    els.list.addEventListener('click', (event) => {
      const button = event.target.closest('.rename-button');
      if (!button) return;
      event.preventDefault();
      const li = button.closest('li.conversation-item');
      const form = li && li.querySelector('.rename-form');
      if (!form) return;
      if (form.hidden) openRename(li);
      else closeRename(li);
    });
    els.list.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      const form = event.target.closest('.rename-form');
      if (!form) return;
      event.preventDefault();
      const li = form.closest('li.conversation-item');
      closeRename(li);
      const button = li.querySelector('.rename-button');
      if (button) button.focus();
    });
    els.list.addEventListener('submit', (event) => {
      const form = event.target;
      if (form.classList.contains('delete-form')) {
        if (!window.confirm(S.confirmDelete)) event.preventDefault();
        return;
      }
      if (form.classList.contains('rename-form')) {
        event.preventDefault();
        const li = form.closest('li.conversation-item');
        const input = form.querySelector('input[name="title"]');
        if (!input || !input.value.trim()) {
          closeRename(li);
          return;
        }
        renameConversation(li, form, input.value);
      }
    });
    els.list.addEventListener('focusout', (event) => {
      const form = event.target.closest && event.target.closest('.rename-form');
      if (!form || form.hidden) return;
      const li = form.closest('li.conversation-item');
      // Leaving the field (not to its own rename button) cancels the edit.
      window.setTimeout(() => {
        if (form.hidden || form.contains(document.activeElement)) return;
        if (li.querySelector('.rename-button') === document.activeElement) return;
        closeRename(li);
      }, 150);
    });
  }

  const toggle = document.getElementById('sidebar-toggle');
  const backdrop = document.getElementById('sidebar-backdrop');
  const setOpen = (open) => {
    document.body.classList.toggle('sidebar-open', open);
    if (toggle) {
      toggle.setAttribute('aria-expanded', String(open));
      toggle.setAttribute('aria-label', open ? S.hideSidebar : S.showSidebar);
    }
  };
  if (toggle) {
    toggle.addEventListener('click', () => setOpen(!document.body.classList.contains('sidebar-open')));
  }
  if (backdrop) backdrop.addEventListener('click', () => setOpen(false));
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && document.body.classList.contains('sidebar-open') && !(event.target instanceof Element && event.target.closest('.rename-form'))) {
      setOpen(false);
      if (toggle) toggle.focus();
    }
  });
}

// ------------------------------------------------------------- streaming

function closeStream() {
  if (state.source) {
    state.source.close();
    state.source = null;
  }
}

function finishStreaming() {
  closeStream();
  state.article = null;
  state.assistantId = null;
  setBusy(false);
}

function openStream(url, article) {
  closeStream();
  const body = article.querySelector('.message-body');
  let caret = body.querySelector('.streaming-caret');
  if (!caret) {
    caret = makeCaret();
    body.append(caret);
  }
  const text = document.createTextNode('');
  body.insertBefore(text, caret);

  const source = new EventSource(url);
  state.source = source;
  state.article = article;
  state.assistantId = article.dataset.messageId;
  article.dataset.status = 'streaming';
  setBusy(true, true);

  const isCurrent = () => state.source === source;

  source.addEventListener('token', (event) => {
    if (!isCurrent()) return;
    const data = parseData(event);
    if (!data || typeof data.text !== 'string' || !data.text) return;
    const follow = isNearBottom();
    text.appendData(data.text);
    if (follow) scrollToBottom();
  });

  // A note before the answer, e.g. a source still being indexed for the first time.
  source.addEventListener('notice', (event) => {
    if (!isCurrent()) return;
    const data = parseData(event);
    if (data && typeof data.message === 'string' && data.message) showNotice(article, data.message);
  });

  source.addEventListener('done', (event) => {
    if (!isCurrent()) return;
    const follow = isNearBottom();
    const data = parseData(event) || {};
    if (data.title_pending) state.source = null; // stays open for the `title` event (awaitTitle)
    finishStreaming();
    if (typeof data.html === 'string') {
      body.innerHTML = data.html; // sanitised by the server
    } else {
      removeCaret(article);
    }
    if (data.message_id) article.dataset.messageId = data.message_id;
    article.dataset.status = data.status === 'stopped' ? 'stopped' : data.status || 'complete';
    clearErrors(article);
    renderSources(article, data.citations);
    applyCiteTitles(article);
    enhanceMessage(article);
    ensureToolbar(article);
    if (data.title) updateConversationTitle(els.messages.dataset.conversationId, data.title);
    if (data.title_pending) awaitTitle(source, els.messages.dataset.conversationId);
    if (follow) scrollToBottom();
  });

  // Fires for the server's named `error` event (a MessageEvent with data) and for
  // connection failures (a plain Event). Both end the stream: no auto-reconnect.
  source.addEventListener('error', (event) => {
    if (!isCurrent()) return;
    const follow = isNearBottom();
    let message = S.lostConnection;
    let retryable = true;
    if (typeof event.data === 'string' && event.data) {
      const data = parseData(event) || {};
      if (typeof data.message === 'string' && data.message) message = data.message;
      retryable = Boolean(data.retryable);
    }
    finishStreaming();
    removeCaret(article);
    article.dataset.status = 'error';
    showMessageError(article, message, retryable);
    restoreQuestion(article);
    if (follow) scrollToBottom();
  });
}

// After the first answer the server names the conversation on the same stream.
function awaitTitle(source, conversationId) {
  const close = () => {
    window.clearTimeout(timer);
    source.close();
  };
  const timer = window.setTimeout(close, TITLE_WAIT_MS);
  source.addEventListener('title', (event) => {
    const data = parseData(event) || {};
    close();
    if (data.title && els.messages.dataset.conversationId === conversationId) {
      updateConversationTitle(conversationId, data.title);
    } else if (data.title) {
      sidebarTouch(conversationId, data.title);
    }
  });
  source.addEventListener('error', close); // the server ended the stream: never reconnect
}

async function stopStreaming() {
  const article = state.article;
  const id = state.assistantId;
  if (!article || !state.source) return;
  finishStreaming();
  removeCaret(article);
  article.dataset.status = 'stopped';
  showNote(article, S.stopped);
  if (els.prompt) els.prompt.focus();
  if (!id) return;
  try {
    await postJSON(API.stop(id), {});
  } catch (err) {
    showComposerError(err && err.message ? err.message : S.stopFailed);
  }
}

// -------------------------------------------------------- conversation

// The conversation's id, creating it (once, however many callers wait) on the first message or file.
async function ensureConversation() {
  const existing = els.messages.dataset.conversationId;
  if (existing) return existing;
  if (!state.conversationPromise) {
    state.conversationPromise = postJSON(API.conversations, newConversationBody()).then(
      (conversation) => {
        els.messages.dataset.conversationId = conversation.id;
        if (conversation.url) window.history.replaceState(null, '', conversation.url);
        addConversationToSidebar(conversation);
        if (conversation.title && els.title) els.title.textContent = conversation.title;
        return conversation.id;
      },
      (err) => {
        state.conversationPromise = null; // let the next try create it
        throw err;
      },
    );
  }
  return state.conversationPromise;
}

// ----------------------------------------------------------- attachments

function renderPendingChips() {
  if (!els.pending) return;
  els.pending.hidden = state.attachments.length === 0;
}

function updateChip(item) {
  const li = item.li;
  li.dataset.state = item.status;
  if (item.id) li.dataset.id = item.id;
  li.querySelector('.attachment-size').textContent = item.status === 'uploading' ? S.uploading : humanSize(item.size);
  let error = li.querySelector('.attachment-error');
  if (item.status === 'error') {
    if (!error) {
      error = document.createElement('span');
      error.className = 'attachment-error';
      error.setAttribute('role', 'alert');
      li.querySelector('.attachment-remove').before(error);
    }
    error.textContent = item.error || S.attachFailed;
  } else if (error) {
    error.remove();
  }
}

function addRemoveButton(li, name) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'attachment-remove';
  button.setAttribute('aria-label', `${S.removeFile} ${name}`);
  button.title = S.removeFile;
  button.textContent = '×';
  li.append(button);
}

function forgetItem(item) {
  state.attachments = state.attachments.filter((a) => a !== item);
  item.li.remove();
  renderPendingChips();
}

async function uploadFile(item, file) {
  try {
    const conversationId = await ensureConversation();
    const form = new FormData();
    form.append('file', file, file.name);
    const data = await postForm(API.attachments(conversationId), form);
    Object.assign(item, { id: data.id, name: data.name || item.name, size: data.size, status: 'ready' });
    if (item.removed) {
      postJSON(API.attachmentDelete(item.id), {}).catch(() => {});
      return;
    }
  } catch (err) {
    Object.assign(item, { status: 'error', error: err && err.message ? err.message : S.attachFailed });
  }
  if (!item.removed) updateChip(item);
}

function addFiles(files) {
  if (!els.pending) return;
  for (const file of Array.from(files || [])) {
    const item = { name: file.name, size: file.size, id: null, status: 'uploading', error: '', removed: false };
    item.li = makeChip(item, '');
    addRemoveButton(item.li, item.name);
    els.pending.append(item.li);
    state.attachments.push(item);
    updateChip(item);
    item.promise = uploadFile(item, file);
  }
  renderPendingChips();
}

function removeFile(item) {
  item.removed = true;
  forgetItem(item);
  if (item.status === 'ready' && item.id) {
    postJSON(API.attachmentDelete(item.id), {}).catch((err) => showComposerError(err.message || S.server));
  }
}

function wireAttachments() {
  els.pending = document.getElementById('attachments-pending');
  const button = document.getElementById('attach');
  const input = document.getElementById('attach-input');
  if (!els.pending || !els.composer) return;
  // Files attached before a reload and not sent yet.
  els.pending.querySelectorAll('li.attachment-chip').forEach((li) => {
    const name = li.querySelector('.attachment-name');
    state.attachments.push({ li, id: li.dataset.id, status: 'ready', name: name ? name.textContent : '', promise: null });
  });
  if (button && input) {
    button.addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      addFiles(input.files);
      input.value = ''; // the same file can be picked again
    });
  }
  els.pending.addEventListener('click', (event) => {
    const remove = event.target.closest('.attachment-remove');
    if (!remove) return;
    const item = state.attachments.find((a) => a.li === remove.closest('li.attachment-chip'));
    if (item) removeFile(item);
    if (els.prompt) els.prompt.focus();
  });
  // Drop files anywhere on the page; the composer shows where they go.
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes('Files');
  let depth = 0;
  document.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth += 1;
    els.composer.classList.add('is-dropping');
  });
  document.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('dragleave', (event) => {
    if (!hasFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) els.composer.classList.remove('is-dropping');
  });
  document.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault(); // never let the browser navigate to the file
    depth = 0;
    els.composer.classList.remove('is-dropping');
    addFiles(event.dataTransfer.files);
  });
}

// -------------------------------------------------------------- sending

async function send(rawText) {
  if (state.busy) return;
  const text = rawText.trim();
  if (!text) return;
  hideComposerError();
  setBusy(true);
  try {
    // Files still uploading go with this question once they are in.
    await Promise.all(state.attachments.map((a) => a.promise).filter(Boolean));
    const sending = state.attachments.filter((a) => a.status === 'ready' && a.id);
    const conversationId = await ensureConversation();
    const data = await postJSON(API.messages(conversationId), {
      content: text,
      attachment_ids: sending.map((a) => a.id),
    });
    sending.forEach(forgetItem);
    // Clear only what was sent; anything typed meanwhile stays.
    if (els.prompt.value === rawText) {
      els.prompt.value = '';
      autogrow();
    }
    removeEmptyState();
    appendUserMessage(data.user_message, text);
    const assistantId = data.assistant_message && data.assistant_message.id;
    const article = appendAssistantMessage(assistantId, text);
    scrollToBottom();
    openStream(data.stream_url || API.stream(assistantId), article);
  } catch (err) {
    setBusy(false);
    showComposerError(err && err.message ? err.message : S.server);
  }
}

function questionFor(article) {
  if (article.dataset.question) return article.dataset.question;
  let prev = article.previousElementSibling;
  while (prev && !prev.classList.contains('message-user')) prev = prev.previousElementSibling;
  const body = prev && prev.querySelector('.message-body');
  return body ? body.innerText || body.textContent || '' : '';
}

// The assistant picked in the header before the first question goes with the new conversation.
function newConversationBody() {
  const picker = document.getElementById('assistant-select');
  return picker && picker.value ? { assistant_id: picker.value } : {};
}

// Nothing typed is lost: after a failure the question is back in an empty composer.
function restoreQuestion(article) {
  const question = questionFor(article).trim();
  if (!question || !els.prompt || els.prompt.value.trim()) return;
  els.prompt.value = question;
  autogrow();
}

function showNotice(article, text) {
  const p = document.createElement('p');
  p.className = 'message-notice';
  p.setAttribute('role', 'status');
  p.textContent = text;
  article.prepend(p);
}

// Answer the same question again in place of the failed answer; if the server cannot
// (e.g. the connection dropped, not the model), ask it again as a new question.
async function retry(article) {
  if (state.busy) return;
  const question = questionFor(article).trim();
  const id = article.dataset.messageId;
  article.querySelectorAll('.retry-button').forEach((b) => b.remove());
  if (els.prompt && els.prompt.value.trim() === question) {
    els.prompt.value = '';
    autogrow();
  }
  if (id) {
    setBusy(true);
    try {
      const data = await postJSON(API.retry(id), {});
      clearErrors(article);
      article.querySelectorAll('.message-notice').forEach((n) => n.remove());
      article.querySelector('.message-body').textContent = '';
      openStream(data.stream_url || API.stream(id), article);
      return;
    } catch {
      setBusy(false);
    }
  }
  if (!question) return;
  els.prompt.value = question;
  autogrow();
  send(els.prompt.value);
}

function wireComposer() {
  const { composer, prompt } = els;
  if (!composer || !prompt) return;
  composer.addEventListener('submit', (event) => {
    event.preventDefault();
    send(prompt.value);
  });
  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      if (!state.busy) composer.requestSubmit();
    }
  });
  prompt.addEventListener('input', () => {
    autogrow();
    if (els.composerError && !els.composerError.hidden && !state.busy) hideComposerError();
  });
  if (els.stop) {
    els.stop.addEventListener('click', (event) => {
      event.preventDefault();
      stopStreaming();
    });
  }
  els.messages.addEventListener('click', (event) => {
    const button = event.target.closest('.retry-button');
    if (!button) return;
    const article = button.closest('article.message');
    if (article) retry(article);
  });
  window.addEventListener('resize', autogrow);
}

// Resume answers that were still being generated when the page was (re)loaded.
function resumePending() {
  const articles = els.messages.querySelectorAll('article.message-assistant[data-status="pending"], article.message-assistant[data-status="streaming"]');
  const last = articles[articles.length - 1];
  if (!last || !last.dataset.messageId || last !== els.messages.lastElementChild) return;
  openStream(API.stream(last.dataset.messageId), last);
}

function loadStrings() {
  const holder = document.getElementById('strings');
  if (!holder) return;
  for (const key of Object.keys(DEFAULT_STRINGS)) {
    const value = holder.dataset[key];
    if (value) S[key] = value;
  }
}

function init() {
  els.messages = document.getElementById('messages');
  if (!els.messages) return;
  els.thread = document.getElementById('thread') || els.messages.parentElement;
  els.composer = document.getElementById('composer');
  els.prompt = document.getElementById('prompt');
  els.send = document.getElementById('send');
  els.stop = document.getElementById('stop');
  els.composerError = document.getElementById('composer-error');
  els.list = document.getElementById('conversation-list');
  els.title = document.getElementById('conversation-title');
  loadStrings();

  els.messages.querySelectorAll('article.message-assistant').forEach(applyCiteTitles);
  initSidebar();
  initMessages({
    isBusy: () => state.busy,
    setBusy,
    openStream,
    appendUserMessage,
    appendAssistantMessage,
    questionFor,
    scrollToBottom,
    showError: showComposerError,
    afterRender: (article) => {
      if (article.classList.contains('message-assistant')) applyCiteTitles(article);
    },
  });
  wireSidebar();
  wireComposer();
  wireAttachments();
  autogrow();
  scrollToBottom();
  resumePending();
  if (els.prompt && window.matchMedia('(min-width: 721px)').matches) els.prompt.focus();
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}

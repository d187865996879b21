// The chat page's shared state and small helpers: its API, translated strings, the elements it
// works with, scrolling, the composer's busy state and error, the conversation being written to.

import { postJSON } from './net.js';
import { sidebarAdd, sidebarTouch } from './sidebar.js';

export const API = {
  conversations: '/chat/api/conversations/',
  messages: (conversationId) => `/chat/api/c/${encodeURIComponent(conversationId)}/messages/`,
  stream: (messageId) => `/chat/api/messages/${encodeURIComponent(messageId)}/stream/`,
  stop: (messageId) => `/chat/api/messages/${encodeURIComponent(messageId)}/stop/`,
  retry: (messageId) => `/chat/api/messages/${encodeURIComponent(messageId)}/retry/`,
  attachments: (conversationId) => `/chat/api/c/${encodeURIComponent(conversationId)}/attachments/`,
  attachmentDelete: (attachmentId) => `/chat/api/attachments/${encodeURIComponent(attachmentId)}/delete/`,
};
const NEAR_BOTTOM_PX = 120;
export const TITLE_WAIT_MS = 30000;

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
  working: 'Thinking…',
  stepsOne: '{n} step',
  stepsOther: '{n} steps',
  stepSources: 'Sources of this step',
  stepRunning: 'In progress',
  stepError: 'Failed',
  stepCancelled: 'Cancelled',
  cited: 'Cited',
  showAllSources: 'Show all {n} sources',
  showFewerSources: 'Show fewer sources',
  querySql: 'SQL query',
  downloadCsv: 'Download CSV',
  sortBy: 'Sort by {column}',
  chart: 'Chart of the query result',
  rowsOne: '{n} row',
  rowsOther: '{n} rows',
  rowsFirst: 'The first {shown} of {count} rows',
  rowsMore: 'The first {shown} rows; the query returned more than {count}',
};

export const S = { ...DEFAULT_STRINGS };

export const els = {};
export const state = {
  busy: false, // a request or a stream is in flight
  source: null, // the open EventSource
  article: null, // the assistant article being streamed
  assistantId: null,
  attachments: [], // files in the composer: {name, size, id, status: uploading|ready|error, error, promise, li}
  conversationPromise: null, // the conversation being created for the first message or file
};

export function parseData(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return null;
  }
}

export function isNearBottom() {
  const t = els.thread;
  if (!t) return true;
  return t.scrollHeight - t.scrollTop - t.clientHeight < NEAR_BOTTOM_PX;
}

export function scrollToBottom() {
  const t = els.thread;
  if (t) t.scrollTop = t.scrollHeight;
}

export function autogrow() {
  const p = els.prompt;
  if (!p) return;
  p.style.height = 'auto';
  p.style.height = `${p.scrollHeight}px`;
}

export function showComposerError(message) {
  if (!els.composerError) return;
  els.composerError.textContent = message;
  els.composerError.hidden = false;
}

export function hideComposerError() {
  if (!els.composerError) return;
  els.composerError.textContent = '';
  els.composerError.hidden = true;
}

export function setBusy(busy, streaming = false) {
  state.busy = busy;
  if (els.send) els.send.disabled = busy;
  if (els.stop) els.stop.hidden = !(busy && streaming);
  if (els.composer) els.composer.classList.toggle('is-busy', busy);
}

export function loadStrings() {
  const holder = document.getElementById('strings');
  if (!holder) return;
  for (const key of Object.keys(DEFAULT_STRINGS)) {
    const value = holder.dataset[key];
    if (value) S[key] = value;
  }
}

export function updateConversationTitle(id, title) {
  if (!title) return;
  sidebarTouch(id, title); // to the top of its group, as the server orders them
  if (els.title) els.title.textContent = title;
  const suffix = document.title.includes(' · ') ? document.title.slice(document.title.lastIndexOf(' · ')) : '';
  document.title = `${title}${suffix || ''}`;
}

// The conversation's id, creating it (once, however many callers wait) on the first message or file.
export async function ensureConversation() {
  const existing = els.messages.dataset.conversationId;
  if (existing) return existing;
  if (!state.conversationPromise) {
    state.conversationPromise = postJSON(API.conversations, newConversationBody()).then(
      (conversation) => {
        els.messages.dataset.conversationId = conversation.id;
        if (conversation.url) window.history.replaceState(null, '', conversation.url);
        sidebarAdd(conversation); // grouped, pinned first: sidebar.js
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

// The assistant picked in the header before the first question goes with the new conversation.
export function newConversationBody() {
  const picker = document.getElementById('assistant-select');
  return picker && picker.value ? { assistant_id: picker.value } : {};
}

export function questionFor(article) {
  if (article.dataset.question) return article.dataset.question;
  let prev = article.previousElementSibling;
  while (prev && !prev.classList.contains('message-user')) prev = prev.previousElementSibling;
  const body = prev && prev.querySelector('.message-body');
  return body ? body.innerText || body.textContent || '' : '';
}

// Nothing typed is lost: after a failure the question is back in an empty composer.
export function restoreQuestion(article) {
  const question = questionFor(article).trim();
  if (!question || !els.prompt || els.prompt.value.trim()) return;
  els.prompt.value = question;
  autogrow();
}

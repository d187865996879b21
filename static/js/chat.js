// Chat page behaviour: the composer, sending and retrying questions, and the start of the page.
// Streaming is in chat-stream.js, drawing in chat-render.js, files in chat-attachments.js, the
// sidebar's controls in chat-rename.js; shared state in chat-core.js. Model output is only ever
// inserted as text; the one innerHTML assignment uses the server-sanitised `html` of `done`.

import { initMessages } from './messages.js';
import { postJSON } from './net.js';
import { initSidebar } from './sidebar.js';
import {
  API, S, autogrow, els, ensureConversation, hideComposerError, loadStrings, questionFor, scrollToBottom,
  setBusy, showComposerError, state,
} from './chat-core.js';
import { appendAssistantMessage, appendUserMessage, applyCiteTitles, clearErrors, removeEmptyState } from './chat-render.js';
import { forgetItem, wireAttachments } from './chat-attachments.js';
import { wireSidebarControls } from './chat-rename.js';
import { openStream, stopStreaming } from './chat-stream.js';
import { wireSources } from './chat-sources.js';
import { wireQueries } from './chat-query.js';
import { wireSteps } from './chat-steps.js';

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
  wireSidebarControls();
  wireComposer();
  wireSteps(els.messages);
  wireSources(els.messages);
  wireQueries(els.messages);
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

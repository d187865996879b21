// Streaming an answer over server-sent events: tokens, notices, the end (sanitised HTML from the
// server), errors with Retry, the conversation's title, and Stop.

import { enhanceMessage, ensureToolbar } from './messages.js';
import { postJSON } from './net.js';
import { sidebarTouch } from './sidebar.js';
import {
  API, S, TITLE_WAIT_MS, els, isNearBottom, parseData, restoreQuestion, scrollToBottom, setBusy,
  showComposerError, state, updateConversationTitle,
} from './chat-core.js';
import {
  applyCiteTitles, clearErrors, makeCaret, removeCaret, showMessageError, showNote, showNotice,
} from './chat-render.js';
import { renderAnswerSources } from './chat-sources.js';
import { applyStep, foldSteps, hideWorking, showWorking } from './chat-steps.js';

export function closeStream() {
  if (state.source) {
    state.source.close();
    state.source = null;
  }
}

// The stream ended (answer, error or Stop): nothing is left saying it is still working.
export function finishStreaming() {
  closeStream();
  hideWorking(state.article);
  foldSteps(state.article);
  state.article = null;
  state.assistantId = null;
  setBusy(false);
}

export function openStream(url, article) {
  closeStream();
  const body = article.querySelector('.message-body');
  let caret = body.querySelector('.streaming-caret');
  if (!caret) {
    caret = makeCaret();
    body.append(caret);
  }
  let text = document.createTextNode('');
  body.insertBefore(text, caret);
  // A retried answer starts over: its steps and sources come again with the new stream.
  article.querySelectorAll(':scope > .steps, :scope > .answer-sources').forEach((el) => el.remove());
  if (!body.textContent.trim()) showWorking(article);

  const source = new EventSource(url);
  state.source = source;
  state.article = article;
  state.assistantId = article.dataset.messageId;
  article.dataset.status = 'streaming';
  setBusy(true, true);

  const isCurrent = () => state.source === source;
  // Events with ids come from an answer written by a worker: after a network failure the
  // browser reconnects by itself and sends the last id, and the server goes on from there.
  let resumable = false;
  const seen = (event) => {
    if (event.lastEventId) resumable = true;
  };
  ['token', 'step', 'notice'].forEach((name) => source.addEventListener(name, seen));

  source.addEventListener('token', (event) => {
    if (!isCurrent()) return;
    const data = parseData(event);
    if (!data || typeof data.text !== 'string' || !data.text) return;
    const follow = isNearBottom();
    hideWorking(article);
    foldSteps(article, false);
    text.appendData(data.text);
    if (follow) scrollToBottom();
  });

  // The answer so far with its markdown rendered (sanitised by the server, like the final HTML);
  // the tokens after it are appended as text until the next one.
  source.addEventListener('render', (event) => {
    if (!isCurrent()) return;
    const data = parseData(event);
    if (!data || typeof data.html !== 'string') return;
    const follow = isNearBottom();
    body.innerHTML = data.html;
    text = document.createTextNode('');
    body.append(text, caret);
    if (follow) scrollToBottom();
  });

  // A tool call starting (status running) or ending (same id, its final status).
  source.addEventListener('step', (event) => {
    if (!isCurrent()) return;
    const follow = isNearBottom();
    applyStep(article, parseData(event));
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
    if (Array.isArray(data.steps)) data.steps.forEach((step) => applyStep(article, step));
    foldSteps(article);
    renderAnswerSources(article, data);
    applyCiteTitles(article);
    enhanceMessage(article);
    ensureToolbar(article);
    if (data.title) updateConversationTitle(els.messages.dataset.conversationId, data.title);
    if (data.title_pending) awaitTitle(source, els.messages.dataset.conversationId);
    if (follow) scrollToBottom();
  });

  // Fires for the server's named `error` event (a MessageEvent with data) and for
  // connection failures (a plain Event). Both end the stream, but for a resumable one that the
  // browser is reconnecting.
  source.addEventListener('error', (event) => {
    if (!isCurrent()) return;
    const named = typeof event.data === 'string' && event.data;
    if (!named && resumable && source.readyState === EventSource.CONNECTING) return; // reconnecting
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
export function awaitTitle(source, conversationId) {
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

export async function stopStreaming() {
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

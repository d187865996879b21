// Thumbs up / down with an optional comment under each finished answer (one rating per
// user and answer; clicking again changes or withdraws it). Works for answers rendered by
// the server and for those chat.js streams in: a MutationObserver adds the buttons when an
// answer's status becomes complete or stopped.
import { csrfToken } from './net.js';

const RATABLE = new Set(['complete', 'stopped']);
const state = new Map(); // message id -> {rating, comment}
const S = {
  commentUp: 'What was good? (optional)',
  commentDown: 'What could be better? (optional)',
  thanks: 'Thanks for your feedback.',
  failed: 'Could not save your feedback. Try again.',
};


async function save(messageId, rating, comment) {
  let response;
  try {
    response = await fetch(`/chat/api/messages/${encodeURIComponent(messageId)}/feedback/`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrfToken() },
      body: JSON.stringify({ rating, comment }),
    });
  } catch {
    throw new Error(S.failed);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok || !data) throw new Error((data && data.error) || S.failed);
  return data;
}

function render(article) {
  const group = article.querySelector('.feedback');
  if (!group) return;
  const current = state.get(article.dataset.messageId) || { rating: '', comment: '' };
  group.dataset.rating = current.rating;
  group.querySelectorAll('.feedback-button').forEach((button) => {
    button.setAttribute('aria-pressed', String(button.dataset.rating === current.rating));
  });
}

function place(article, group) {
  const toolbar = article.querySelector('.message-toolbar');
  if (toolbar) {
    if (group.parentElement !== toolbar) toolbar.append(group);
    const bar = article.querySelector(':scope > .feedback-bar');
    if (bar && !bar.querySelector('.feedback')) bar.remove();
    return;
  }
  if (!group.parentElement) {
    const bar = document.createElement('div');
    bar.className = 'feedback-bar';
    bar.append(group);
    article.append(bar);
  }
}

function ensure(article) {
  if (!article.classList.contains('message-assistant')) return;
  const id = article.dataset.messageId;
  let group = article.querySelector('.feedback');
  if (!id || !RATABLE.has(article.dataset.status)) {
    if (group) group.remove(); // an answer being generated again cannot be rated yet
    return;
  }
  if (!group) {
    const template = document.getElementById('feedback-template');
    if (!template) return;
    group = template.content.firstElementChild.cloneNode(true);
  }
  place(article, group);
  render(article);
}

function closeForm(article) {
  article.querySelectorAll('.feedback-form').forEach((form) => form.remove());
}

function openForm(article, rating) {
  closeForm(article);
  const template = document.getElementById('feedback-form-template');
  if (!template) return;
  const form = template.content.firstElementChild.cloneNode(true);
  const textarea = form.querySelector('.feedback-comment');
  const label = form.querySelector('.feedback-form-label');
  const current = state.get(article.dataset.messageId) || { comment: '' };
  textarea.value = current.comment || '';
  if (label && label.firstChild) label.firstChild.textContent = rating === 'up' ? S.commentUp : S.commentDown;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const error = form.querySelector('.feedback-form-error');
    const rated = (state.get(article.dataset.messageId) || {}).rating || rating;
    try {
      const data = await save(article.dataset.messageId, rated, textarea.value);
      state.set(article.dataset.messageId, data);
      render(article);
      form.replaceChildren();
      const thanks = document.createElement('p');
      thanks.className = 'feedback-thanks';
      thanks.setAttribute('role', 'status');
      thanks.textContent = S.thanks;
      form.append(thanks);
      window.setTimeout(() => form.remove(), 2500);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  form.querySelector('.feedback-cancel').addEventListener('click', () => closeForm(article));
  textarea.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeForm(article);
  });
  const anchor = article.querySelector('.message-toolbar') || article.querySelector('.feedback-bar');
  if (anchor) anchor.after(form);
  else article.append(form);
  textarea.focus();
}

async function onClick(event) {
  const button = event.target.closest('.feedback-button');
  if (!button) return;
  const article = button.closest('article.message-assistant');
  if (!article || !article.dataset.messageId) return;
  const id = article.dataset.messageId;
  const current = state.get(id) || { rating: '', comment: '' };
  const rating = current.rating === button.dataset.rating ? '' : button.dataset.rating;
  try {
    const data = await save(id, rating, rating ? current.comment || '' : '');
    state.set(id, data);
    render(article);
    if (rating) openForm(article, rating);
    else closeForm(article);
  } catch (err) {
    closeForm(article);
    const p = document.createElement('p');
    p.className = 'feedback-form feedback-form-error';
    p.setAttribute('role', 'alert');
    p.textContent = err.message;
    (article.querySelector('.message-toolbar') || article.querySelector('.feedback-bar') || article).after(p);
  }
}

function init() {
  const messages = document.getElementById('messages');
  if (!messages) return;
  const holder = document.getElementById('feature-strings');
  if (holder) {
    S.commentUp = holder.dataset.commentUp || S.commentUp;
    S.commentDown = holder.dataset.commentDown || S.commentDown;
    S.thanks = holder.dataset.thanks || S.thanks;
    S.failed = holder.dataset.feedbackFailed || S.failed;
  }
  const initial = document.getElementById('feedback-state');
  if (initial) {
    try {
      const data = JSON.parse(initial.textContent || '{}');
      for (const [id, value] of Object.entries(data || {})) state.set(id, value);
    } catch {
      /* no saved ratings */
    }
  }
  messages.querySelectorAll('article.message-assistant').forEach(ensure);
  messages.addEventListener('click', onClick);
  let queued = false;
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    window.requestAnimationFrame(() => {
      queued = false;
      messages.querySelectorAll('article.message-assistant').forEach(ensure);
    });
  }).observe(messages, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status', 'data-message-id'] });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}

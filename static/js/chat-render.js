// Drawing messages: user and assistant articles, file chips, errors and notes, the sources list.
// Model output is only ever inserted as text.

import { ensureToolbar } from './messages.js';
import { S, els } from './chat-core.js';

export function removeEmptyState() {
  const empty = document.getElementById('empty-state');
  if (empty) empty.remove();
}

export function createArticle(role, id, status) {
  const article = document.createElement('article');
  article.className = `message message-${role}`;
  article.dataset.messageId = id || '';
  article.dataset.status = status;
  const body = document.createElement('div');
  body.className = 'message-body';
  article.append(body);
  return article;
}

export function humanSize(bytes) {
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
export function makeChip(file, href) {
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

export function appendUserMessage(message, fallbackText) {
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

export function makeCaret() {
  const caret = document.createElement('span');
  caret.className = 'streaming-caret';
  caret.setAttribute('aria-hidden', 'true');
  return caret;
}

export function appendAssistantMessage(id, question) {
  const article = createArticle('assistant', id, 'streaming');
  article.querySelector('.message-body').append(makeCaret());
  article.dataset.question = question;
  els.messages.append(article);
  ensureToolbar(article);
  return article;
}

export function removeCaret(article) {
  article.querySelectorAll('.streaming-caret').forEach((c) => c.remove());
}

export function clearErrors(article) {
  article.querySelectorAll('.message-error, .retry-button, .message-note').forEach((e) => e.remove());
}

export function showMessageError(article, message, retryable) {
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

export function showNote(article, text) {
  const p = document.createElement('p');
  p.className = 'message-note';
  p.textContent = text;
  const after = article.querySelector('.message-error') || article.querySelector('.message-body');
  after.after(p);
}

export function renderSources(article, citations) {
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
export function applyCiteTitles(article) {
  const quotes = new Map();
  article.querySelectorAll('ol.sources li.source, .answer-sources li.source').forEach((li) => {
    const quote = li.querySelector('.source-quote, .source-passage');
    const link = li.querySelector('a');
    const text = (quote && quote.textContent.trim()) || (link && link.textContent.trim()) || '';
    if (text) quotes.set(li.dataset.n, text);
  });
  article.querySelectorAll('.message-body a.cite, .message-body .cite').forEach((chip) => {
    const text = quotes.get(chip.dataset.n);
    if (text) chip.setAttribute('title', text);
  });
}

export function showNotice(article, text) {
  const p = document.createElement('p');
  p.className = 'message-notice';
  p.setAttribute('role', 'status');
  p.textContent = text;
  article.prepend(p);
}

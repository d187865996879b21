// Message tools: copy an answer, regenerate it, edit a question and resend it (a new branch),
// switch between versions ("< 1/2 >"), and code blocks (highlight.js, copy button).
// chat.js owns streaming; it hands its functions over in initMessages().

import { requestJSON, strings } from './net.js';
import { showToast } from './toast.js';

const HLJS_URL = new URL('../vendor/highlightjs-11.11.1/highlight.min.js', import.meta.url).href;
const COPIED_MS = 1600;
const API = {
  regenerate: (id) => `/chat/api/messages/${encodeURIComponent(id)}/regenerate/`,
  edit: (id) => `/chat/api/messages/${encodeURIComponent(id)}/edit/`,
  activate: (id) => `/chat/api/messages/${encodeURIComponent(id)}/activate/`,
};

let S = {};
let chat = null; // functions from chat.js
let hljsPromise = null;

// ------------------------------------------------------------- clipboard

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Older browsers, or no permission: the hidden-textarea way.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'visually-hidden';
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

function flashCopied(button, label) {
  const before = button.getAttribute('aria-label') || '';
  const labelEl = button.querySelector('.copy-label');
  button.dataset.copied = 'true';
  button.setAttribute('aria-label', S.copied);
  if (labelEl) labelEl.textContent = S.copied;
  window.setTimeout(() => {
    button.dataset.copied = 'false';
    button.setAttribute('aria-label', before);
    if (labelEl) labelEl.textContent = label;
  }, COPIED_MS);
}

// The answer as plain text: what the reader sees, with code blocks' toolbars left out.
function answerText(article) {
  const body = article.querySelector('.message-body');
  if (!body) return '';
  const clone = body.cloneNode(true);
  clone.querySelectorAll('.code-block-header').forEach((h) => h.remove());
  // innerText needs layout; the clone is measured off-screen.
  clone.className = 'message-body visually-hidden';
  document.body.append(clone);
  const text = clone.innerText;
  clone.remove();
  return text.trim();
}

// ----------------------------------------------------------- code blocks

function loadHighlighter() {
  if (!hljsPromise) {
    hljsPromise = import(HLJS_URL).then((module) => {
      const hljs = module.default;
      hljs.configure({ ignoreUnescapedHTML: true });
      return hljs;
    });
  }
  return hljsPromise;
}

function enhanceCode(body) {
  const blocks = Array.from(body.querySelectorAll('pre > code')).filter((code) => !code.closest('.code-block'));
  if (!blocks.length) return;
  for (const code of blocks) {
    const pre = code.parentElement;
    const language = (Array.from(code.classList).find((c) => c.startsWith('language-')) || '').slice(9);
    const wrapper = document.createElement('div');
    wrapper.className = 'code-block';
    const header = document.createElement('div');
    header.className = 'code-block-header';
    const name = document.createElement('span');
    name.className = 'code-language';
    name.textContent = language || 'code';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy-code-button';
    button.setAttribute('aria-label', S.copyCode);
    const label = document.createElement('span');
    label.className = 'copy-label';
    label.textContent = S.copy;
    button.append(label);
    header.append(name, button);
    pre.replaceWith(wrapper);
    wrapper.append(header, pre);
  }
  loadHighlighter()
    .then((hljs) => {
      for (const code of blocks) {
        const language = (Array.from(code.classList).find((c) => c.startsWith('language-')) || '').slice(9);
        if (language && !hljs.getLanguage(language)) continue; // unknown language: leave it plain
        if (!code.dataset.highlighted) hljs.highlightElement(code);
        const name = code.closest('.code-block').querySelector('.code-language');
        if (name && !language && code.result && code.result.language) name.textContent = code.result.language;
      }
    })
    .catch(() => {
      /* highlighting is a nicety: the code stays readable without it */
    });
}

export function enhanceMessage(article) {
  const body = article && article.querySelector('.message-body');
  if (!body) return;
  if (article.classList.contains('message-assistant')) {
    enhanceCode(body);
    body.querySelectorAll('a.image-link').forEach((a) => {
      a.setAttribute('target', '_blank');
      a.setAttribute('rel', 'noopener noreferrer nofollow');
      if (!a.dataset.hint) {
        a.dataset.hint = '1';
        a.title = `${a.title}\n${S.imageHint}`.trim();
      }
    });
  }
}

// --------------------------------------------------------------- toolbars

function svg(path) {
  const ns = 'http://www.w3.org/2000/svg';
  const icon = document.createElementNS(ns, 'svg');
  icon.setAttribute('class', 'icon');
  icon.setAttribute('viewBox', '0 0 24 24');
  icon.setAttribute('width', '14');
  icon.setAttribute('height', '14');
  icon.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', path);
  p.setAttribute('fill', 'none');
  p.setAttribute('stroke', 'currentColor');
  p.setAttribute('stroke-width', '2');
  p.setAttribute('stroke-linecap', 'round');
  p.setAttribute('stroke-linejoin', 'round');
  icon.append(p);
  return icon;
}

function versionsGroup(versions) {
  const group = document.createElement('div');
  group.className = 'versions';
  group.setAttribute('role', 'group');
  group.setAttribute('aria-label', S.versions);
  const button = (cls, target, label, path) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `icon-button version-button ${cls}`;
    b.dataset.target = target || '';
    b.disabled = !target;
    b.setAttribute('aria-label', label);
    b.title = label;
    b.append(svg(path));
    return b;
  };
  const text = document.createElement('span');
  text.className = 'version-label';
  text.textContent = `${versions.index}/${versions.count}`;
  group.append(
    button('version-prev', versions.previous_id, S.previousVersion, 'M15 6l-6 6 6 6'),
    text,
    button('version-next', versions.next_id, S.nextVersion, 'M9 6l6 6-6 6'),
  );
  return group;
}

// Give a message built on this page the toolbar the server renders, at its end.
export function ensureToolbar(article, versions = null) {
  if (!article) return null;
  let toolbar = article.querySelector(':scope > .message-toolbar');
  if (!toolbar) {
    const role = article.classList.contains('message-assistant') ? 'assistant' : 'user';
    const template = document.getElementById(`toolbar-${role}-template`);
    if (!template || !template.content.firstElementChild) return null;
    toolbar = template.content.firstElementChild.cloneNode(true);
  }
  if (versions && versions.count > 1) {
    const old = toolbar.querySelector('.versions');
    if (old) old.remove();
    toolbar.prepend(versionsGroup(versions));
  }
  article.append(toolbar); // after the sources, which arrive with the end of the answer
  return toolbar;
}

// ------------------------------------------------------------ the thread

// Everything from `article` to the end of the thread (the branch being replaced).
function removeFrom(article) {
  let node = article;
  while (node) {
    const next = node.nextElementSibling;
    node.remove();
    node = next;
  }
}

// Show another branch: the server renders the conversation; its messages replace ours.
async function refreshThread() {
  const messages = document.getElementById('messages');
  const response = await fetch(window.location.pathname, { credentials: 'same-origin' });
  if (!response.ok) throw new Error(S.server);
  const page = new DOMParser().parseFromString(await response.text(), 'text/html');
  const fresh = page.getElementById('messages');
  if (!fresh) throw new Error(S.server);
  messages.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
  messages.querySelectorAll('article.message').forEach((article) => {
    enhanceMessage(article);
    if (chat.afterRender) chat.afterRender(article);
  });
}

async function showVersion(button) {
  if (chat.isBusy() || !button.dataset.target) return;
  const thread = document.getElementById('thread');
  const article = button.closest('article.message');
  const top = article ? article.getBoundingClientRect().top : 0;
  try {
    await requestJSON(API.activate(button.dataset.target), { method: 'POST' });
    await refreshThread();
  } catch (err) {
    chat.showError(err.message || S.server);
    return;
  }
  // Keep the switched message where the reader was looking.
  const same = document.querySelector(`article.message[data-message-id="${button.dataset.target}"]`);
  if (same && thread) thread.scrollTop += same.getBoundingClientRect().top - top;
  const again = same && same.querySelector(`.version-button.${button.classList.contains('version-prev') ? 'version-prev' : 'version-next'}`);
  if (again && !again.disabled) again.focus();
}

async function regenerate(article) {
  if (chat.isBusy()) return;
  const id = article.dataset.messageId;
  if (!id) return;
  chat.setBusy(true);
  let data;
  try {
    data = await requestJSON(API.regenerate(id), { method: 'POST' });
  } catch (err) {
    chat.setBusy(false);
    chat.showError(err.message || S.server);
    return;
  }
  const question = chat.questionFor(article);
  removeFrom(article);
  const answer = chat.appendAssistantMessage(data.assistant_message.id, question);
  ensureToolbar(answer, data.assistant_message.versions);
  chat.scrollToBottom();
  chat.openStream(data.stream_url, answer);
}

function openEditor(article) {
  if (chat.isBusy() || article.classList.contains('is-editing')) return;
  const body = article.querySelector('.message-body');
  if (!body) return;
  article.classList.add('is-editing');
  body.hidden = true;
  const form = document.createElement('form');
  form.className = 'edit-form';
  const area = document.createElement('textarea');
  area.name = 'content';
  area.value = body.innerText.trim();
  area.setAttribute('aria-label', S.editLabel);
  const actions = document.createElement('div');
  actions.className = 'edit-actions';
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = 'edit-cancel';
  cancel.textContent = S.cancel;
  const send = document.createElement('button');
  send.type = 'submit';
  send.className = 'edit-send';
  send.textContent = S.saveSend;
  actions.append(cancel, send);
  form.append(area, actions);
  body.after(form);
  const close = () => {
    form.remove();
    body.hidden = false;
    article.classList.remove('is-editing');
  };
  cancel.addEventListener('click', close);
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      close();
    } else if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (chat.isBusy() || !area.value.trim()) return;
    chat.setBusy(true);
    let data;
    try {
      data = await requestJSON(API.edit(article.dataset.messageId), { method: 'POST', body: { content: area.value } });
    } catch (err) {
      chat.setBusy(false);
      chat.showError(err.message || S.server);
      return;
    }
    removeFrom(article);
    const question = chat.appendUserMessage(data.user_message, area.value.trim());
    ensureToolbar(question, data.user_message.versions);
    const answer = chat.appendAssistantMessage(data.assistant_message.id, data.user_message.content);
    chat.scrollToBottom();
    chat.openStream(data.stream_url, answer);
  });
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

function wireThread(messages) {
  messages.addEventListener('click', async (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const article = target.closest('article.message');
    const codeButton = target.closest('.copy-code-button');
    if (codeButton) {
      const code = codeButton.closest('.code-block').querySelector('pre code');
      if (await copyText(code ? code.innerText : '')) flashCopied(codeButton, S.copy);
      else showToast(S.copyFailed);
      return;
    }
    if (!article) return;
    if (target.closest('.copy-answer-button')) {
      const button = target.closest('.copy-answer-button');
      if (await copyText(answerText(article))) flashCopied(button, '');
      else showToast(S.copyFailed);
    } else if (target.closest('.regenerate-button')) {
      regenerate(article);
    } else if (target.closest('.edit-question-button')) {
      openEditor(article);
    } else if (target.closest('.version-button')) {
      showVersion(target.closest('.version-button'));
    }
  });
}

export function initMessages(api) {
  chat = api;
  S = strings('ux-strings', {
    copied: 'Copied',
    copy: 'Copy',
    copyCode: 'Copy code',
    copyFailed: 'Could not copy; select the text and copy it by hand.',
    versions: 'Versions',
    previousVersion: 'Previous version',
    nextVersion: 'Next version',
    saveSend: 'Send',
    cancel: 'Cancel',
    editLabel: 'Edit your question',
    imageHint: 'Images in answers are not loaded; open the link to see it.',
    server: 'Something went wrong. Please try again.',
  });
  const messages = document.getElementById('messages');
  if (!messages) return;
  messages.querySelectorAll('article.message').forEach((article) => enhanceMessage(article));
  wireThread(messages);
}

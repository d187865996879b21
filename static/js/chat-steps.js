// What the assistant is doing before it answers: the working indicator (from sending until the
// first token or step) and the steps (tool calls) as they stream in `step` events, folded into
// one line ("3 steps") once the answer starts. templates/chat/_steps.html draws the same for a
// stored answer; the toggles work for both. Everything from the server is inserted as text.

import { S } from './chat-core.js';

// “travel policy 2024” or « politique voyages »: shown in italics, unquoted (as chat_steps.py).
const QUOTED = /“([^”]*)”|«\s?([^»]*?)\s?»/g;
const STATUSES = new Set(['running', 'done', 'error', 'cancelled']);
// Said to screen readers after the label (the status icons are decoration).
const STATUS_WORDS = { running: 'stepRunning', error: 'stepError', cancelled: 'stepCancelled' };
let counter = 0;

// ------------------------------------------------------------ the working indicator

export function showWorking(article) {
  if (article.querySelector('.working')) return;
  const box = document.createElement('div');
  box.className = 'working';
  box.setAttribute('role', 'status');
  const dots = document.createElement('span');
  dots.className = 'working-dots';
  dots.setAttribute('aria-hidden', 'true');
  dots.append(document.createElement('span'), document.createElement('span'), document.createElement('span'));
  const label = document.createElement('span');
  label.className = 'working-label';
  label.textContent = S.working;
  box.append(dots, label);
  const body = article.querySelector('.message-body');
  if (body) body.before(box);
  else article.append(box);
  article.dataset.working = 'true';
}

export function hideWorking(article) {
  if (!article) return;
  article.querySelectorAll('.working').forEach((w) => w.remove());
  delete article.dataset.working;
}

// ------------------------------------------------------------------- steps

function labelNodes(text) {
  const nodes = [];
  let at = 0;
  for (const match of text.matchAll(QUOTED)) {
    nodes.push(document.createTextNode(text.slice(at, match.index)));
    const em = document.createElement('em');
    em.textContent = match[1] ?? match[2] ?? '';
    nodes.push(em);
    at = match.index + match[0].length;
  }
  nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function stepsCount(n) {
  let rule = 'other';
  try {
    rule = new Intl.PluralRules(document.documentElement.lang || undefined).select(n);
  } catch {
    rule = n === 1 ? 'one' : 'other';
  }
  return (rule === 'one' ? S.stepsOne : S.stepsOther).replace('{n}', String(n));
}

function argumentRows(args) {
  const dl = element('dl', 'step-arguments');
  if (!args || typeof args !== 'object' || Array.isArray(args)) return dl;
  for (const [name, value] of Object.entries(args)) {
    const row = element('div', 'step-argument');
    row.append(element('dt', '', name), element('dd', '', typeof value === 'string' ? value : JSON.stringify(value)));
    dl.append(row);
  }
  return dl;
}

function sourceLinks(sources) {
  const ul = element('ul', 'step-sources');
  ul.setAttribute('aria-label', S.stepSources);
  for (const s of sources) {
    if (!s || typeof s !== 'object') continue;
    const li = document.createElement('li');
    const a = element('a', '', s.title || '');
    if (typeof s.url === 'string' && s.url.startsWith('/')) a.setAttribute('href', s.url);
    li.append(a);
    if (s.connector) li.append(' ', element('span', 'step-source-connector', s.connector));
    ul.append(li);
  }
  return ul;
}

function setStatus(li, status) {
  li.dataset.status = status;
  const label = li.querySelector('.step-label');
  if (!label) return;
  label.querySelectorAll('.visually-hidden').forEach((el) => el.remove());
  if (STATUS_WORDS[status]) label.append(element('span', 'visually-hidden', ` (${S[STATUS_WORDS[status]]})`));
}

// The inside of one step, redrawn whole on each update of the same id.
function fillStep(li, step) {
  const text = element('div', 'step-text');
  const label = element('p', 'step-label');
  label.append(...labelNodes(String(step.label || step.tool || '')));
  text.append(label);
  if (step.summary) text.append(element('p', 'step-summary', String(step.summary)));
  const details = element('div', 'step-details');
  const args = argumentRows(step.arguments);
  if (args.childElementCount) details.append(args);
  if (step.error) details.append(element('p', 'step-error', String(step.error)));
  const sources = Array.isArray(step.sources) ? step.sources : [];
  if (sources.length) details.append(sourceLinks(sources));
  text.append(details);
  const status = element('span', 'step-status');
  status.setAttribute('aria-hidden', 'true');
  li.replaceChildren(status, text);
  setStatus(li, STATUSES.has(step.status) ? step.status : 'running');
}

function toggleButton(listId) {
  const button = element('button', 'steps-toggle');
  button.type = 'button';
  button.setAttribute('aria-expanded', 'true');
  button.setAttribute('aria-controls', listId);
  const icon = element('span', 'steps-icon');
  icon.setAttribute('aria-hidden', 'true');
  const chevron = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  chevron.setAttribute('class', 'icon steps-chevron');
  chevron.setAttribute('viewBox', '0 0 24 24');
  chevron.setAttribute('width', '14');
  chevron.setAttribute('height', '14');
  chevron.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', 'M9 6l6 6-6 6');
  for (const [k, v] of [['fill', 'none'], ['stroke', 'currentColor'], ['stroke-width', '2'], ['stroke-linecap', 'round'], ['stroke-linejoin', 'round']]) {
    path.setAttribute(k, v);
  }
  chevron.append(path);
  button.append(icon, element('span', 'steps-count'), chevron);
  return button;
}

function stepsBox(article) {
  let box = article.querySelector(':scope > .steps');
  if (box) return box;
  box = element('div', 'steps');
  box.dataset.mode = 'live';
  counter += 1;
  const listId = `steps-${article.dataset.messageId || 'live'}-${counter}`;
  const button = toggleButton(listId);
  button.hidden = true; // shown once the steps fold
  const list = element('ol', 'steps-list');
  list.id = listId;
  box.append(button, list);
  const before = article.querySelector(':scope > .working') || article.querySelector(':scope > .message-body');
  if (before) before.before(box);
  else article.prepend(box);
  return box;
}

// A `step` event: a new step (running), or the end of one already shown (same id).
export function applyStep(article, step) {
  if (!step || typeof step !== 'object' || !step.id) return;
  hideWorking(article);
  const box = stepsBox(article);
  const list = box.querySelector('.steps-list');
  let li = Array.from(list.children).find((el) => el.dataset.stepId === String(step.id));
  if (!li) {
    li = element('li', 'step');
    li.dataset.stepId = String(step.id);
    list.append(li);
  }
  fillStep(li, step);
  box.querySelector('.steps-count').textContent = stepsCount(list.childElementCount);
}

function setOpen(box, open) {
  box.dataset.mode = open ? 'open' : 'folded';
  const button = box.querySelector('.steps-toggle');
  button.hidden = false;
  button.setAttribute('aria-expanded', String(open));
  box.querySelector('.steps-list').hidden = !open;
}

// The answer started (`ended` false: unless a step still runs, as when a model writes a line
// before calling a tool) or the stream ended: live steps fold into their one-line toggle.
export function foldSteps(article, ended = true) {
  if (!article) return;
  article.querySelectorAll(':scope > .steps[data-mode="live"]').forEach((box) => {
    if (!ended && box.querySelector('.step[data-status="running"]')) return;
    box.querySelectorAll('.step[data-status="running"]').forEach((li) => {
      setStatus(li, 'cancelled'); // ended without its result (stopped or failed)
    });
    setOpen(box, false);
  });
}

// The steps drawn by the server or by applyStep, after `done` redraws nothing of them.
export function wireSteps(messages) {
  messages.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('.steps-toggle') : null;
    if (!button) return;
    const box = button.closest('.steps');
    if (box && box.dataset.mode !== 'live') setOpen(box, box.dataset.mode !== 'open');
  });
}

// Below an answer: every document it was given, cited ones first and marked, folded to the first
// few with "Show all". templates/chat/_answer_sources.html draws the same for a stored answer;
// an answer stored before sources were kept shows its citations instead (chat-render.js).

import { S } from './chat-core.js';
import { renderSources } from './chat-render.js';
import { drawQuery } from './chat-query.js';

// As many as the template shows before "Show all" (sources_shown in chat.html).
const SHOWN = 3;
let counter = 0;

function sourceItem(s, index) {
  const li = document.createElement('li');
  li.className = 'source';
  li.dataset.n = String(s.n ?? '');
  li.dataset.cited = s.cited ? 'true' : 'false';
  li.hidden = index >= SHOWN;
  const query = s.kind === 'query'; // a query result: its table, chart and download below (chat-query.js)
  const a = document.createElement(query ? 'span' : 'a');
  a.className = 'source-title';
  if (!query && typeof s.url === 'string' && s.url.startsWith('/')) a.setAttribute('href', s.url);
  a.textContent = s.title || '';
  const meta = document.createElement('span');
  meta.className = 'source-meta';
  if (s.cited) {
    const cited = document.createElement('span');
    cited.className = 'source-cited';
    const n = document.createElement('span');
    n.className = 'source-n';
    n.textContent = `[${s.n ?? ''}]`;
    cited.append(`${S.cited} `, n);
    meta.append(cited, ' ');
  }
  const connector = document.createElement('span');
  connector.className = 'source-connector';
  connector.textContent = s.connector || '';
  meta.append(connector);
  li.append(a, meta);
  if (s.passage) {
    const p = document.createElement('p');
    p.className = 'source-passage';
    p.textContent = s.passage;
    li.append(p);
  }
  if (query) {
    li.classList.add('source-query');
    li.id = `query-${s.query_id}`;
    const result = document.createElement('div');
    result.className = 'query-result';
    result.dataset.query = JSON.stringify(s);
    li.append(result);
    drawQuery(result);
  }
  return li;
}

function moreButton(listId, total) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'sources-more';
  button.setAttribute('aria-expanded', 'false');
  button.setAttribute('aria-controls', listId);
  button.textContent = S.showAllSources.replace('{n}', String(total));
  return button;
}

// The `done` event's sources (or, for an older answer, its citations).
export function renderAnswerSources(article, data) {
  article.querySelectorAll(':scope > .answer-sources').forEach((el) => el.remove());
  const sources = Array.isArray(data.sources) ? data.sources.filter((s) => s && typeof s === 'object') : [];
  if (!sources.length) {
    renderSources(article, data.citations);
    return;
  }
  article.querySelectorAll('ol.sources').forEach((ol) => ol.remove());
  const section = document.createElement('section');
  section.className = 'answer-sources';
  section.setAttribute('aria-label', S.sources);
  const title = document.createElement('h3');
  title.className = 'answer-sources-title';
  const count = document.createElement('span');
  count.className = 'answer-sources-count';
  count.textContent = String(sources.length);
  title.append(`${S.sources} `, count);
  const list = document.createElement('ol');
  list.className = 'source-list';
  counter += 1;
  list.id = `sources-${article.dataset.messageId || 'live'}-${counter}`;
  sources.forEach((s, i) => list.append(sourceItem(s, i)));
  section.append(title, list);
  if (sources.length > SHOWN) section.append(moreButton(list.id, sources.length));
  article.append(section);
}

// "Show all 7 sources" / "Show fewer sources", on answers drawn by the server or by the page.
export function wireSources(messages) {
  messages.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('.sources-more') : null;
    if (!button) return;
    const list = document.getElementById(button.getAttribute('aria-controls') || '');
    if (!list) return;
    const open = button.getAttribute('aria-expanded') !== 'true';
    Array.from(list.children).forEach((li, i) => {
      li.hidden = !open && i >= SHOWN;
    });
    button.setAttribute('aria-expanded', String(open));
    button.textContent = open ? S.showFewerSources : S.showAllSources.replace('{n}', String(list.childElementCount));
    if (open && list.children[SHOWN]) list.children[SHOWN].querySelector('a')?.focus();
  });
}

// A query result under an answer (a source of kind "query", assistant/rag/query_sources.py): its
// SQL folded, its first rows as a table sortable by any column (numbers as numbers), the chart the
// model asked for beside it (Chart.js, vendored, loaded the first time a chart is drawn) and a link
// to download the full result as CSV. The stored record arrives in the data-query attribute of a
// .query-result element (templates/chat/_answer_sources.html, chat-sources.js); this draws it.

import { S } from './chat-core.js';

const CHART_URL = new URL('../vendor/chartjs-4.5.1/chart.umd.min.js', import.meta.url).href;
const SWATCHES = 6;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const charts = new Map(); // canvas -> Chart, redrawn when the theme changes
let chartLibrary = null;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function isNumber(value) {
  return (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && NUMBER.test(value.trim()));
}

function numericColumns(columns, rows) {
  return columns.map((_, i) => rows.some((r) => r[i] !== null) && rows.every((r) => r[i] === null || isNumber(r[i])));
}

function cellText(value) {
  return value === null || value === undefined ? 'NULL' : String(value);
}

function sqlBlock(sql) {
  const details = el('details', 'query-sql');
  const summary = el('summary', '', S.querySql);
  const pre = el('pre');
  pre.append(el('code', 'language-sql', sql));
  details.append(summary, pre);
  return details;
}

function table(columns, rows, numeric) {
  const wrap = el('div', 'query-table-wrap');
  wrap.tabIndex = 0; // scrollable: reachable from the keyboard
  const t = el('table', 'query-table');
  const head = el('tr');
  columns.forEach((name, i) => {
    const th = el('th');
    th.scope = 'col';
    if (numeric[i]) th.classList.add('num');
    const button = el('button', 'query-sort', String(name));
    button.type = 'button';
    button.dataset.column = String(i);
    button.title = S.sortBy.replace('{column}', String(name));
    th.append(button);
    head.append(th);
  });
  const body = el('tbody');
  for (const row of rows) {
    const tr = el('tr');
    columns.forEach((_, i) => {
      const value = row[i] ?? null;
      const td = el('td', value === null ? 'null' : numeric[i] ? 'num' : '', cellText(value));
      if (numeric[i] && value !== null) td.dataset.value = String(value);
      tr.append(td);
    });
    body.append(tr);
  }
  const thead = el('thead');
  thead.append(head);
  t.append(thead, body);
  wrap.append(t);
  return wrap;
}

function countText(q) {
  const shown = q.rows.length;
  const count = Number(q.row_count) || shown;
  if (q.truncated) return S.rowsMore.replace('{shown}', shown).replace('{count}', count);
  if (shown < count) return S.rowsFirst.replace('{shown}', shown).replace('{count}', count);
  return (count === 1 ? S.rowsOne : S.rowsOther).replace('{n}', count);
}

function foot(q) {
  const p = el('p', 'query-foot');
  p.append(el('span', 'query-count', countText(q)));
  if (typeof q.url === 'string' && q.url.startsWith('/')) {
    const a = el('a', 'query-download', S.downloadCsv);
    a.href = q.url;
    a.setAttribute('download', '');
    p.append(' ', a);
  }
  return p;
}

function chartFigure(chart) {
  const figure = el('figure', 'query-chart');
  const box = el('div', 'query-chart-box');
  const canvas = el('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', chart.title || S.chart);
  box.append(canvas);
  const swatches = el('div', 'chart-swatches');
  swatches.setAttribute('aria-hidden', 'true');
  for (let i = 1; i <= SWATCHES; i += 1) swatches.append(el('span', `chart-swatch chart-c${i}`));
  swatches.append(el('span', 'chart-swatch chart-grid'), el('span', 'chart-swatch chart-surface'));
  figure.append(box, swatches);
  if (chart.title) figure.append(el('figcaption', '', chart.title));
  return figure;
}

// The theme's colours, read from swatches: a custom property holding light-dark() is resolved only
// where a real property uses it.
function palette(figure) {
  const colour = (selector) => getComputedStyle(figure.querySelector(selector)).color;
  return {
    series: Array.from({ length: SWATCHES }, (_, i) => colour(`.chart-c${i + 1}`)),
    text: getComputedStyle(figure).color,
    grid: colour('.chart-grid'),
    surface: colour('.chart-surface'),
  };
}

function chartConfig(q, figure) {
  const { chart, columns, rows } = q;
  const x = columns.indexOf(chart.x);
  const ys = chart.y.map((name) => ({ name, index: columns.indexOf(name) })).filter((y) => y.index >= 0);
  const colours = palette(figure);
  const pie = chart.type === 'pie';
  const datasets = ys.map((y, i) => {
    const colour = colours.series[i % SWATCHES];
    return {
      label: y.name,
      data: rows.map((r) => (r[y.index] === null ? null : Number(r[y.index]))),
      backgroundColor: pie ? rows.map((_, j) => colours.series[j % SWATCHES]) : colour,
      borderColor: pie ? colours.surface : colour,
      borderWidth: pie ? 2 : chart.type === 'line' ? 2 : 0,
      pointRadius: 3,
      tension: 0.2,
    };
  });
  const axis = { ticks: { color: colours.text }, grid: { color: colours.grid }, border: { color: colours.grid } };
  return {
    type: chart.type,
    data: { labels: rows.map((r) => cellText(r[x])), datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      color: colours.text,
      plugins: { legend: { display: pie || ys.length > 1, labels: { color: colours.text } } },
      scales: pie ? {} : { x: axis, y: { ...axis, beginAtZero: chart.type === 'bar' } },
    },
  };
}

function drawChart(q, figure) {
  if (!chartLibrary) chartLibrary = import(CHART_URL).then(() => window.Chart);
  chartLibrary
    .then((Chart) => {
      const canvas = figure.querySelector('canvas');
      const drawn = new Chart(canvas, chartConfig(q, figure));
      charts.set(canvas, { drawn, q, figure });
      figure.dataset.drawn = 'true';
    })
    .catch(() => {
      figure.hidden = true; // the table says it all
    });
}

function redrawCharts() {
  for (const [canvas, { drawn, q, figure }] of charts) {
    if (!canvas.isConnected) {
      drawn.destroy();
      charts.delete(canvas);
      continue;
    }
    const config = chartConfig(q, figure);
    drawn.config.options = config.options;
    drawn.config.data = config.data;
    drawn.update('none');
  }
}

function validRecord(q) {
  return q && Array.isArray(q.columns) && Array.isArray(q.rows) && q.rows.every(Array.isArray);
}

function validChart(q) {
  const c = q.chart;
  return c && ['bar', 'line', 'pie'].includes(c.type) && q.columns.includes(c.x) && Array.isArray(c.y)
    && c.y.some((y) => q.columns.includes(y));
}

// Fill a .query-result from its data-query (once).
export function drawQuery(host) {
  if (host.dataset.ready) return;
  host.dataset.ready = 'true';
  let q = null;
  try {
    q = JSON.parse(host.dataset.query || 'null');
  } catch {
    q = null;
  }
  if (!validRecord(q)) return;
  const view = el('div', 'query-view');
  const figure = validChart(q) ? chartFigure(q.chart) : null;
  if (figure) {
    view.classList.add('with-chart');
    view.append(figure);
  }
  view.append(table(q.columns, q.rows, numericColumns(q.columns, q.rows)));
  host.append(sqlBlock(String(q.sql || '')), view, foot(q));
  if (figure) drawChart(q, figure);
}

export function drawQueries(root) {
  root.querySelectorAll('.query-result[data-query]').forEach(drawQuery);
}

function compare(a, b, numeric) {
  if (a === null) return b === null ? 0 : 1; // NULLs last, whichever the direction
  if (b === null) return -1;
  if (numeric) return Number(a) - Number(b);
  return a.localeCompare(b, undefined, { numeric: true, sensitivity: 'base' });
}

function sortBy(button) {
  const th = button.closest('th');
  const t = button.closest('table');
  const index = Number(button.dataset.column);
  const numeric = th.classList.contains('num');
  const ascending = th.getAttribute('aria-sort') !== 'ascending';
  t.querySelectorAll('th[aria-sort]').forEach((other) => other.removeAttribute('aria-sort'));
  th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  const key = (tr) => {
    const td = tr.children[index];
    if (!td || td.classList.contains('null')) return null;
    return numeric ? td.dataset.value : td.textContent;
  };
  const rows = Array.from(t.tBodies[0].rows);
  rows.sort((r1, r2) => {
    const [a, b] = [key(r1), key(r2)];
    if (a === null || b === null) return compare(a, b, numeric);
    return (ascending ? 1 : -1) * compare(a, b, numeric);
  });
  t.tBodies[0].append(...rows);
}

// Sorting on every query table of the thread, drawn by the server or by the page; charts follow the theme.
export function wireQueries(messages) {
  drawQueries(messages);
  messages.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('.query-sort') : null;
    if (button) sortBy(button);
  });
  new MutationObserver(redrawCharts).observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  if (window.matchMedia) window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', redrawCharts);
}

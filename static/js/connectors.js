// The connectors pages: live sync progress, "Test connection" without a reload, and file
// uploads by drag and drop, the dataset editor of database connectors. Every page works without this script; it only makes them livelier.
import { csrfToken } from './net.js';
import { wireDatasetEditor } from './dataset-editor.js';
import { renderPreviewList } from './connector-preview.js';
import { wordsFrom } from './words.js';

const POLL_MS = 1500;
const RETRY_MS = 5000;


function formatBytes(bytes) {
  const units = ['bytes', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(1).replace(/\.0$/, '')} ${units[unit]}`;
}

// Words shown to the user, translated by the server into <template id="connectors-strings">.
const t = wordsFrom('connectors-strings');

const STATUS_LABELS = {
  idle: t('idle', 'Idle'),
  syncing: t('syncing', 'Syncing'),
  error: t('error', 'Error'),
  paused: t('paused', 'Paused'),
};

// --- live progress ---------------------------------------------------------------------

function progressText(run) {
  if (!run) return '';
  if (run.progress_percent !== null && run.progress_percent !== undefined) return `${run.progress_percent}%`;
  if (run.status === 'queued') return t('queued', 'Queued');
  if (run.active) return run.seen ? t('read', '{n} read', { n: run.seen }) : t('counting', 'Counting…');
  return '';
}

function setBadge(badge, prefix, status, label) {
  if (!badge) return;
  badge.className = `badge ${prefix}${status}`;
  badge.textContent = label;
}

function renderProgress(root, data) {
  const run = data.run;
  setBadge(root.querySelector('[data-status-badge]'), 'badge-', data.status, STATUS_LABELS[data.status] || data.status);
  const connectorBadge = document.querySelector('#connector-status [data-status-badge]');
  if (connectorBadge && !root.contains(connectorBadge)) {
    setBadge(connectorBadge, 'badge-', data.status, STATUS_LABELS[data.status] || data.status);
  }
  if (!run) return;
  setBadge(root.querySelector('[data-run-status] .badge'), 'badge-run-', run.status, run.status_label);
  const bar = root.querySelector('progress');
  if (bar) {
    if (run.progress_percent === null || run.progress_percent === undefined) bar.removeAttribute('value');
    else bar.value = run.progress_percent;
  }
  const text = root.querySelector('[data-progress-text]');
  if (text) text.textContent = progressText(run);
  root.querySelectorAll('[data-count]').forEach((cell) => {
    const value = run[cell.dataset.count];
    cell.textContent = value === null || value === undefined ? '?' : String(value);
  });
  for (const [selector, value] of [['[data-run-error]', run.error], ['[data-run-notes]', run.notes]]) {
    const node = root.querySelector(selector);
    if (node) {
      node.textContent = value || '';
      node.hidden = !value;
    }
  }
}

function watchProgress(root) {
  if (root.dataset.active !== 'true') return;
  const url = root.dataset.progressUrl;
  const tick = async () => {
    let delay = POLL_MS;
    if (document.hidden) {
      window.setTimeout(tick, POLL_MS); // a background tab asks again once it is seen
      return;
    }
    try {
      const response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.json();
      renderProgress(root, data);
      if (!data.active) {
        root.dataset.active = 'false';
        // The run ended: show its final counts in the history and the buttons that now apply.
        window.setTimeout(() => window.location.reload(), 600);
        return;
      }
    } catch {
      delay = RETRY_MS; // the server is busy or restarting: keep trying, more slowly
    }
    window.setTimeout(tick, delay);
  };
  window.setTimeout(tick, POLL_MS);
}

// --- test connection ---------------------------------------------------------------------

function renderTest(panel, data) {
  panel.hidden = false;
  panel.classList.toggle('is-ok', Boolean(data.ok));
  panel.classList.toggle('is-error', !data.ok);
  panel.querySelector('[data-test-message]').textContent = `${data.ok ? '✓' : '✗'} ${data.message || ''}`;
  renderPreviewList(panel.querySelector('[data-test-preview]'), data.preview);
}

function wireTest() {
  const form = document.getElementById('test-form');
  const panel = document.getElementById('test-result');
  if (!form || !panel) return;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    const label = button.textContent;
    button.disabled = true;
    button.textContent = t('testing', 'Testing…');
    try {
      const response = await fetch(form.action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { Accept: 'application/json', 'X-CSRFToken': csrfToken(form) },
        body: new FormData(form),
      });
      if (!response.ok) throw new Error(t('serverAnswered', 'The server answered {status}.', { status: response.status }));
      renderTest(panel, await response.json());
    } catch (error) {
      renderTest(panel, { ok: false, message: t('testFailed', 'The test could not run: {error}', { error: error.message }), preview: [] });
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  });
}

// --- uploads -----------------------------------------------------------------------------

function wireUpload() {
  const form = document.getElementById('upload-form');
  if (!form) return;
  const zone = document.getElementById('dropzone');
  const input = document.getElementById('upload-input');
  const queue = document.getElementById('upload-queue');
  const maxBytes = Number(form.dataset.maxBytes || 0);
  const extensions = (form.dataset.extensions || '').split(',').filter(Boolean);

  const showQueue = () => {
    queue.replaceChildren();
    const files = Array.from(input.files || []);
    queue.hidden = files.length === 0;
    for (const file of files) {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.textContent = file.name;
      const note = document.createElement('span');
      const dot = file.name.lastIndexOf('.');
      const ext = dot > 0 ? file.name.slice(dot).toLowerCase() : '';
      let problem = '';
      if (!extensions.includes(ext)) problem = t('notAccepted', '{ext}: not accepted', { ext: ext || t('noExtension', 'no extension') });
      else if (maxBytes && file.size > maxBytes) problem = t('tooLarge', 'too large (limit {limit})', { limit: formatBytes(maxBytes) });
      note.textContent = problem || formatBytes(file.size);
      if (problem) li.classList.add('is-refused');
      li.append(name, note);
      queue.append(li);
    }
  };

  input.addEventListener('change', showQueue);
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add('is-dragging');
    });
  }
  for (const type of ['dragleave', 'dragend']) {
    zone.addEventListener(type, () => zone.classList.remove('is-dragging'));
  }
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('is-dragging');
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      showQueue();
    }
  });
  // A file dropped next to the zone must not make the browser leave the page.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());
  form.addEventListener('submit', (event) => {
    if (!input.files || input.files.length === 0) {
      event.preventDefault();
      input.click();
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    button.textContent = t('uploading', 'Uploading…');
  });
}

function wireConfirms() {
  document.querySelectorAll('form[data-confirm]').forEach((form) => {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

function init() {
  document.querySelectorAll('[data-progress-url]').forEach(watchProgress);
  wireTest();
  wireUpload();
  wireConfirms();
  wireDatasetEditor();
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}

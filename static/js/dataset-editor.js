// The dataset editor of a database connector's form: "Test connection and list tables", one card per
// dataset (dataset-card.js), a live preview of two rows of each. It writes the datasets JSON into the
// form's own (hidden) datasets field, which is what the server validates and saves: without this
// script that field is edited by hand, and nothing else changes.
import { DatasetCard } from './dataset-card.js';
import { RequestError, postJSON } from './net.js';
import { wordsFrom } from './words.js';

const t = wordsFrom('connectors-strings');
const PREVIEW_DELAY_MS = 500;

class DatasetEditor {
  constructor(holder, config) {
    this.holder = holder;
    this.config = config;
    this.form = holder.closest('form');
    this.root = holder.querySelector('[data-editor-root]');
    this.field = holder.querySelector('[data-json-field]');
    this.textarea = this.field.querySelector('textarea');
    this.list = holder.querySelector('[data-editor-cards]');
    this.status = holder.querySelector('[data-editor-status]');
    this.back = holder.querySelector('[data-editor-back]');
    this.relations = new Map();
    this.cards = [];
    this.timers = new Map();
    this.asked = new Map();
    this.connected = false;
    this.context = {
      groups: config.groups || [],
      relations: () => Array.from(this.relations.values()),
      relation: (name) => this.relations.get(name),
      onChange: (card) => this.changed(card),
      onRemove: (card) => this.remove(card),
      onReadColumns: (card) => this.readColumns(card),
    };
    holder.querySelector('[data-editor-connect]').addEventListener('click', () => this.connect());
    holder.querySelector('[data-editor-add]').addEventListener('click', () => this.add({}, true));
    holder.querySelector('[data-editor-json]').addEventListener('click', () => this.showJSON(true));
    this.back.addEventListener('click', () => this.showJSON(false));
    this.form.addEventListener('submit', () => { if (this.root.hidden === false) this.write(); });
  }

  start() {
    if (!this.fromJSON()) return;
    this.root.hidden = false;
    this.field.hidden = true;
    this.placeServerErrors(this.config.errors || []);
    if (this.config.saved) this.connect();
  }

  // Cards from the JSON field; false (the field stays shown) when it is not a list of objects.
  fromJSON() {
    let datasets = [];
    try {
      datasets = this.textarea.value.trim() ? JSON.parse(this.textarea.value) : [];
    } catch {
      datasets = null;
    }
    const problem = this.holder.querySelector('[data-editor-json-error]');
    problem.hidden = Array.isArray(datasets);
    if (!Array.isArray(datasets)) {
      problem.textContent = t('notAList', 'The datasets above are not a JSON list; fix them as JSON, or empty the field to start again.');
      return false;
    }
    this.cards.forEach((card) => card.root.remove());
    this.cards = [];
    if (!datasets.length) datasets = [{}];
    datasets.forEach((spec) => this.add(spec, false));
    this.write();
    return true;
  }

  add(spec, focus) {
    const card = new DatasetCard(spec, this.context);
    this.cards.push(card);
    this.list.append(card.root);
    if (focus) card.el('name').focus();
    this.write();
    return card;
  }

  remove(card) {
    card.root.remove();
    this.cards = this.cards.filter((item) => item !== card);
    this.write();
  }

  write() {
    this.textarea.value = JSON.stringify(this.cards.map((card) => card.read()), null, 2);
  }

  changed(card) {
    this.write();
    window.clearTimeout(this.timers.get(card));
    this.timers.set(card, window.setTimeout(() => this.refresh(card), PREVIEW_DELAY_MS));
  }

  // After a pause in typing: a changed query's columns are read again, then the preview follows.
  async refresh(card) {
    const query = (card.read().query || '').trim();
    if (card.mode === 'query' && query && query !== card.lastQuery && (this.connected || this.config.saved)) {
      await this.readColumns(card);
      return;
    }
    this.preview(card);
  }

  showJSON(show) {
    if (!show && !this.fromJSON()) return;
    if (show) this.write();
    this.root.hidden = show;
    this.field.hidden = !show;
    this.back.hidden = !show;
    if (!show) this.cards.forEach((card) => this.preview(card));
  }

  // The form's connection settings, as the endpoints read them (an empty password: the saved one).
  connection(extra = {}) {
    const body = {};
    for (const name of this.config.connection_fields || []) {
      const control = this.form.elements.namedItem(name);
      if (control && 'value' in control) body[name] = control.type === 'checkbox' ? control.checked : control.value;
    }
    return { ...body, ...extra };
  }

  showMessage(text, failed = false) {
    this.status.hidden = !text;
    this.status.textContent = text;
    this.status.classList.toggle('is-error', failed);
  }

  async connect() {
    const button = this.holder.querySelector('[data-editor-connect]');
    button.disabled = true;
    this.showMessage(t('connecting', 'Connecting…'));
    this.markConnection(null);
    try {
      const data = await postJSON(this.config.tables_url, this.connection());
      this.relations = new Map(data.relations.map((relation) => [relation.name, relation]));
      this.connected = true;
      const said = t('connected', '✓ Connected to {server}, database {database}. Tables and views: {count}.', {
        server: data.server, database: data.database, count: data.counts.tables + data.counts.views,
      });
      this.showMessage(data.truncated ? `${said} ${t('truncated', 'Only the first ones are listed.')}` : said);
      this.cards.forEach((card) => { card.refreshTables(); this.preview(card); });
    } catch (error) {
      this.showMessage(`✗ ${error.message}`, true);
      this.markConnection(error.data && error.data.field);
    } finally {
      button.disabled = false;
    }
  }

  // A connection setting the server complained about is marked in the form above.
  markConnection(field) {
    this.form.querySelectorAll('[data-editor-marked]').forEach((node) => {
      node.removeAttribute('aria-invalid');
      node.removeAttribute('data-editor-marked');
    });
    const control = field && this.form.elements.namedItem(field);
    if (control && control.setAttribute) {
      control.setAttribute('aria-invalid', 'true');
      control.setAttribute('data-editor-marked', '');
    }
  }

  async readColumns(card) {
    const query = card.read().query || '';
    card.lastQuery = query.trim();
    card.showErrors([]);
    try {
      const data = await postJSON(this.config.tables_url, this.connection({ query }));
      if (data.columns) card.setQueryColumns(data.columns);
      this.write();
      this.preview(card);
    } catch (error) {
      this.cardError(card, error);
    }
  }

  async preview(card) {
    if (!this.cards.includes(card) || this.root.hidden) return;
    if (!card.previewable() || (!this.connected && !this.config.saved)) {
      card.showPreview(t('previewWaits', 'Pick a table (or write a query) and its id columns to see two rows here.'));
      return;
    }
    const asked = (this.asked.get(card) || 0) + 1;
    this.asked.set(card, asked);
    card.showPreview(t('previewing', 'Reading two rows…'));
    try {
      const data = await postJSON(this.config.preview_url, this.connection({ dataset: card.read() }));
      if (this.asked.get(card) !== asked) return; // a newer preview is on its way
      card.showErrors([]);
      const denied = data.denied_columns.length ? ` ${t('leftOut', 'Left out: {columns}.', { columns: data.denied_columns.join(', ') })}` : '';
      const status = data.documents.length ? t('previewReady', 'The documents of the first rows, by id.') : t('noRows', 'The dataset has no rows yet.');
      card.showPreview(status + denied, data.documents);
    } catch (error) {
      if (this.asked.get(card) !== asked) return;
      this.cardError(card, error);
    }
  }

  cardError(card, error) {
    const data = (error instanceof RequestError && error.data) || {};
    if (data.field) {
      this.showMessage(`✗ ${error.message}`, true);
      this.markConnection(data.field);
      card.showPreview(t('previewFailed', 'No preview: fix the problem marked above.'), [], true);
      return;
    }
    card.showErrors([{ field: data.dataset_field || '', message: error.message }]);
    card.showPreview(t('previewFailed', 'No preview: fix the problem marked above.'), [], true);
  }

  // The errors of a refused save, next to the dataset fields they are about.
  placeServerErrors(errors) {
    const general = [];
    const byCard = new Map();
    for (const error of errors) {
      const card = Number.isInteger(error.dataset) ? this.cards[error.dataset] : null;
      if (!card) {
        general.push(error.message);
        continue;
      }
      byCard.set(card, [...(byCard.get(card) || []), { field: error.field || '', message: error.message }]);
    }
    byCard.forEach((list, card) => card.showErrors(list));
    const box = this.holder.querySelector('[data-editor-errors]');
    box.replaceChildren(...general.map((message) => Object.assign(document.createElement('p'), { textContent: message })));
    box.hidden = general.length === 0;
  }
}

export function wireDatasetEditor() {
  const holder = document.querySelector('[data-dataset-editor]');
  const script = document.getElementById('dataset-editor-config');
  if (!holder || !script || !document.getElementById('dataset-card-template')) return;
  new DatasetEditor(holder, JSON.parse(script.textContent)).start();
}

// One dataset of the dataset editor: a card cloned from <template id="dataset-card-template">, filled
// from one item of the datasets JSON and read back into it. Keys the card does not edit
// (metadata_columns, …) are kept as they were. Its controls belong to no form (form="…" names none),
// so only the JSON the editor writes is submitted.
import { renderPreviewList } from './connector-preview.js';
import { wordsFrom } from './words.js';

const t = wordsFrom('connectors-strings');
const EDITED = new Set(['name', 'table', 'query', 'id_columns', 'title_template', 'text_template', 'text_columns',
  'updated_at_column', 'acl', 'acl_groups', 'acl_column', 'denied_columns', 'description']);
const TEMPLATE = '\u0000template';
const PLACEHOLDER = /^\{([A-Za-z_][\w$]*)\}$/;
const NO_FORM = 'dataset-editor-controls';
const GROUPS = ['id_columns', 'text_columns', 'denied_columns', 'acl_groups'];
let cards = 0;

function list(value) {
  return Array.isArray(value) ? value.filter((item) => typeof item === 'string') : [];
}

function make(tag, properties) {
  return Object.assign(document.createElement(tag), properties);
}

function option(value, label, disabled = false) {
  const node = document.createElement('option');
  node.value = value;
  node.textContent = label;
  node.disabled = disabled;
  return node;
}

function columnLabel(column) {
  return column.type ? `${column.name} (${column.type})` : column.name;
}

export class DatasetCard {
  // `context`: { groups, relations(), relation(name), onChange(card), onRemove(card), onReadColumns(card) }
  constructor(spec, context) {
    const template = document.getElementById('dataset-card-template');
    this.root = template.content.firstElementChild.cloneNode(true);
    this.context = context;
    this.prefix = `dataset-${(cards += 1)}`;
    this.queryColumns = null;
    this.lastQuery = '';
    for (const control of this.root.querySelectorAll('[data-input]')) {
      const key = control.dataset.input;
      control.setAttribute('form', NO_FORM);
      if (control.type === 'radio') control.name = `${this.prefix}-${key}`;
      else control.id = `${this.prefix}-${key}`;
    }
    for (const label of this.root.querySelectorAll('[data-for]')) label.htmlFor = `${this.prefix}-${label.dataset.for}`;
    this.root.addEventListener('input', (event) => this.changed(event));
    this.root.addEventListener('change', (event) => this.changed(event));
    this.root.querySelector('[data-card-remove]').addEventListener('click', () => context.onRemove(this));
    this.root.querySelector('[data-read-columns]').addEventListener('click', () => context.onReadColumns(this));
    this.load(spec);
  }

  el(key) {
    return this.root.querySelector(`[data-input="${key}"]`);
  }

  radio(key) {
    const checked = this.root.querySelector(`[data-input="${key}"]:checked`);
    return checked ? checked.value : '';
  }

  setRadio(key, value) {
    this.root.querySelectorAll(`[data-input="${key}"]`).forEach((input) => { input.checked = input.value === value; });
  }

  checked(group) {
    return Array.from(this.root.querySelectorAll(`[data-choices="${group}"] input:checked`), (input) => input.value);
  }

  get mode() {
    return this.radio('mode') || 'table';
  }

  load(raw) {
    const spec = raw && typeof raw === 'object' && !Array.isArray(raw) ? raw : {};
    this.extra = Object.fromEntries(Object.entries(spec).filter(([key]) => !EDITED.has(key)));
    this.el('name').value = typeof spec.name === 'string' ? spec.name : '';
    this.nameAuto = !this.el('name').value;
    this.setRadio('mode', typeof spec.query === 'string' && !spec.table ? 'query' : 'table');
    this.el('query').value = typeof spec.query === 'string' ? spec.query : '';
    const title = typeof spec.title_template === 'string' ? spec.title_template : '';
    const titleColumn = PLACEHOLDER.exec(title);
    this.el('title_template').value = titleColumn ? '' : title;
    this.el('text_template').value = typeof spec.text_template === 'string' ? spec.text_template : '';
    const textMode = spec.text_template ? 'template' : list(spec.text_columns).length ? 'columns' : 'all';
    this.setRadio('text_mode', textMode);
    this.setRadio('acl', ['public', 'groups', 'column'].includes(spec.acl) ? spec.acl : 'connector');
    this.el('description').value = typeof spec.description === 'string' ? spec.description : '';
    this.render({
      table: typeof spec.table === 'string' ? spec.table : '',
      title_column: titleColumn ? titleColumn[1] : title ? TEMPLATE : '',
      updated_at_column: spec.updated_at_column || '',
      acl_column: spec.acl_column || '',
      ...Object.fromEntries(GROUPS.map((group) => [group, list(spec[group])])),
    });
  }

  // What the controls hold now (the values a re-render keeps).
  values() {
    return {
      table: this.el('table').value,
      title_column: this.el('title_column').value,
      updated_at_column: this.el('updated_at_column').value,
      acl_column: this.el('acl_column').value,
      ...Object.fromEntries(GROUPS.map((group) => [group, this.checked(group)])),
    };
  }

  // The columns of the chosen table or query; while they are unknown, the ones the dataset names.
  columns(values) {
    const known = this.mode === 'query' ? this.queryColumns : (this.context.relation(values.table) || {}).columns;
    if (known) return known;
    const named = [...values.id_columns, ...values.text_columns, ...values.denied_columns,
      values.title_column, values.updated_at_column, values.acl_column];
    return [...new Set(named.filter((name) => name && name !== TEMPLATE))].map((name) => ({ name, type: '' }));
  }

  render(values) {
    const columns = this.columns(values);
    const denied = new Set(values.denied_columns);
    this.renderTables(values.table);
    this.renderChoices('id_columns', columns, values.id_columns);
    this.renderChoices('text_columns', columns, values.text_columns.filter((name) => !denied.has(name)), denied);
    this.renderChoices('denied_columns', columns, values.denied_columns);
    this.renderChoices('acl_groups', this.context.groups.map((name) => ({ name, type: '' })), values.acl_groups);
    this.renderSelect('title_column', columns, values.title_column, t('titleDefault', "— the row's id —"), denied);
    this.el('title_column').append(option(TEMPLATE, t('titleTemplate', 'A template…')));
    this.el('title_column').value = values.title_column;
    this.renderSelect('updated_at_column', columns, values.updated_at_column, t('noCursor', '— none —'));
    this.renderSelect('acl_column', columns, values.acl_column, t('pickColumn', '— pick a column —'));
    this.showParts();
  }

  renderTables(current) {
    const select = this.el('table');
    const relations = this.context.relations();
    select.replaceChildren(option('', relations.length ? t('pickTable', '— pick a table —') : t('connectFirst', '— test the connection to list tables —')));
    for (const [kind, label] of [['table', t('tables', 'Tables')], ['view', t('views', 'Views')]]) {
      const group = document.createElement('optgroup');
      group.label = label;
      for (const relation of relations.filter((item) => item.kind === kind)) group.append(option(relation.name, relation.name));
      if (group.children.length) select.append(group);
    }
    if (current && !this.context.relation(current)) select.append(option(current, current));
    select.value = current;
  }

  renderChoices(group, columns, picked, disabled = new Set()) {
    const holder = this.root.querySelector(`[data-choices="${group}"]`);
    const names = new Set(columns.map((column) => column.name));
    const all = [...columns, ...picked.filter((name) => !names.has(name)).map((name) => ({ name, type: '' }))];
    holder.replaceChildren(...all.map((column) => {
      const input = make('input', {
        type: 'checkbox', value: column.name, checked: picked.includes(column.name), disabled: disabled.has(column.name),
      });
      input.setAttribute('form', NO_FORM);
      const label = make('label', { className: 'check' });
      label.append(input, make('span', { textContent: column.name }));
      if (column.type) label.append(make('small', { className: 'column-type', textContent: column.type }));
      return label;
    }));
    if (!all.length) holder.append(make('p', { className: 'help', textContent: t('noColumns', 'Pick a table (or read the query’s columns) first.') }));
  }

  renderSelect(key, columns, current, empty, disabled = new Set()) {
    const select = this.el(key);
    select.replaceChildren(option('', empty), ...columns.map((column) => option(column.name, columnLabel(column), disabled.has(column.name))));
    if (current && current !== TEMPLATE && !columns.some((column) => column.name === current)) select.append(option(current, current));
    select.value = current;
  }

  showParts() {
    const mode = this.mode;
    const text = this.radio('text_mode');
    const acl = this.radio('acl');
    this.root.querySelectorAll('[data-when-mode]').forEach((node) => { node.hidden = node.dataset.whenMode !== mode; });
    this.root.querySelectorAll('[data-when-text]').forEach((node) => { node.hidden = node.dataset.whenText !== text; });
    this.root.querySelectorAll('[data-when-acl]').forEach((node) => { node.hidden = node.dataset.whenAcl !== acl; });
    this.el('title_template').hidden = this.el('title_column').value !== TEMPLATE;
    const name = this.el('name').value.trim();
    this.root.querySelector('[data-card-title]').textContent = name || t('newDataset', 'New dataset');
  }

  changed(event) {
    const key = event.target.dataset.input;
    if (event.type === 'input' && key !== 'name' && !['text', 'textarea'].includes(event.target.type)) return;
    if (key === 'name') this.nameAuto = !event.target.value;
    if (key === 'table' && this.nameAuto) this.el('name').value = event.target.value.split('.').pop();
    if (key === 'table' || key === 'mode') this.render(this.values());
    const group = event.target.closest('[data-choices]');
    if (group && group.dataset.choices === 'denied_columns') this.applyDenied();
    this.showParts();
    this.context.onChange(this, event);
  }

  // A denied column cannot be in the text or be the title: those choices are switched off.
  applyDenied() {
    const denied = new Set(this.checked('denied_columns'));
    this.root.querySelectorAll('[data-choices="text_columns"] input').forEach((input) => {
      input.disabled = denied.has(input.value);
      if (input.disabled) input.checked = false;
    });
    const title = this.el('title_column');
    for (const item of title.options) item.disabled = denied.has(item.value);
    if (denied.has(title.value)) title.value = '';
  }

  setQueryColumns(columns) {
    this.queryColumns = columns;
    this.render(this.values());
  }

  refreshTables() {
    this.render(this.values());
  }

  // The dataset as the server reads it (the same JSON the textarea holds).
  read() {
    const spec = { ...this.extra, name: this.el('name').value.trim() };
    if (this.mode === 'query') spec.query = this.el('query').value;
    else spec.table = this.el('table').value;
    spec.id_columns = this.checked('id_columns');
    const title = this.el('title_column').value;
    const template = this.el('title_template').value.trim();
    if (title === TEMPLATE && template) spec.title_template = template;
    else if (title && title !== TEMPLATE) spec.title_template = `{${title}}`;
    const text = this.radio('text_mode');
    if (text === 'columns' && this.checked('text_columns').length) spec.text_columns = this.checked('text_columns');
    if (text === 'template' && this.el('text_template').value.trim()) spec.text_template = this.el('text_template').value;
    if (this.el('updated_at_column').value) spec.updated_at_column = this.el('updated_at_column').value;
    const acl = this.radio('acl');
    if (acl && acl !== 'connector') spec.acl = acl;
    if (acl === 'groups') spec.acl_groups = this.checked('acl_groups');
    if (acl === 'column' && this.el('acl_column').value) spec.acl_column = this.el('acl_column').value;
    if (this.checked('denied_columns').length) spec.denied_columns = this.checked('denied_columns');
    if (this.el('description').value.trim()) spec.description = this.el('description').value.trim();
    return spec;
  }

  // Whether a preview can be asked for: a table or query, and id columns.
  previewable() {
    const spec = this.read();
    return Boolean((spec.table || (spec.query || '').trim()) && spec.id_columns.length);
  }

  // Errors next to their field: [{field, message}]; a field the card does not know goes on top.
  showErrors(errors) {
    this.root.querySelectorAll('[data-error-for]').forEach((slot) => { slot.replaceChildren(); slot.hidden = true; });
    this.root.querySelectorAll('[aria-invalid]').forEach((node) => node.removeAttribute('aria-invalid'));
    for (const error of errors) {
      const slot = this.root.querySelector(`[data-error-for="${error.field || ''}"]`) || this.root.querySelector('[data-error-for=""]');
      slot.append(make('p', { textContent: error.message }));
      slot.hidden = false;
      const control = this.el(error.field);
      if (control) control.setAttribute('aria-invalid', 'true');
    }
    this.root.classList.toggle('has-error', errors.length > 0);
  }

  showPreview(status, documents = [], failed = false) {
    const node = this.root.querySelector('[data-preview-status]');
    node.textContent = status;
    node.classList.toggle('is-error', failed);
    renderPreviewList(this.root.querySelector('[data-preview-list]'), documents);
  }
}

// Files attached in the composer: uploaded as soon as they are picked or dropped, shown as chips,
// removable, sent with the next question.

import { postForm, postJSON } from './net.js';
import { API, S, els, ensureConversation, showComposerError, state } from './chat-core.js';
import { humanSize, makeChip } from './chat-render.js';

export function renderPendingChips() {
  if (!els.pending) return;
  els.pending.hidden = state.attachments.length === 0;
}

export function updateChip(item) {
  const li = item.li;
  li.dataset.state = item.status;
  if (item.id) li.dataset.id = item.id;
  li.querySelector('.attachment-size').textContent = item.status === 'uploading' ? S.uploading : humanSize(item.size);
  let error = li.querySelector('.attachment-error');
  if (item.status === 'error') {
    if (!error) {
      error = document.createElement('span');
      error.className = 'attachment-error';
      error.setAttribute('role', 'alert');
      li.querySelector('.attachment-remove').before(error);
    }
    error.textContent = item.error || S.attachFailed;
  } else if (error) {
    error.remove();
  }
}

export function addRemoveButton(li, name) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'attachment-remove';
  button.setAttribute('aria-label', `${S.removeFile} ${name}`);
  button.title = S.removeFile;
  button.textContent = '×';
  li.append(button);
}

export function forgetItem(item) {
  state.attachments = state.attachments.filter((a) => a !== item);
  item.li.remove();
  renderPendingChips();
}

export async function uploadFile(item, file) {
  try {
    const conversationId = await ensureConversation();
    const form = new FormData();
    form.append('file', file, file.name);
    const data = await postForm(API.attachments(conversationId), form);
    Object.assign(item, { id: data.id, name: data.name || item.name, size: data.size, status: 'ready' });
    if (item.removed) {
      postJSON(API.attachmentDelete(item.id), {}).catch(() => {});
      return;
    }
  } catch (err) {
    Object.assign(item, { status: 'error', error: err && err.message ? err.message : S.attachFailed });
  }
  if (!item.removed) updateChip(item);
}

export function addFiles(files) {
  if (!els.pending) return;
  for (const file of Array.from(files || [])) {
    const item = { name: file.name, size: file.size, id: null, status: 'uploading', error: '', removed: false };
    item.li = makeChip(item, '');
    addRemoveButton(item.li, item.name);
    els.pending.append(item.li);
    state.attachments.push(item);
    updateChip(item);
    item.promise = uploadFile(item, file);
  }
  renderPendingChips();
}

export function removeFile(item) {
  item.removed = true;
  forgetItem(item);
  if (item.status === 'ready' && item.id) {
    postJSON(API.attachmentDelete(item.id), {}).catch((err) => showComposerError(err.message || S.server));
  }
}

export function wireAttachments() {
  els.pending = document.getElementById('attachments-pending');
  const button = document.getElementById('attach');
  const input = document.getElementById('attach-input');
  if (!els.pending || !els.composer) return;
  // Files attached before a reload and not sent yet.
  els.pending.querySelectorAll('li.attachment-chip').forEach((li) => {
    const name = li.querySelector('.attachment-name');
    state.attachments.push({ li, id: li.dataset.id, status: 'ready', name: name ? name.textContent : '', promise: null });
  });
  if (button && input) {
    button.addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      addFiles(input.files);
      input.value = ''; // the same file can be picked again
    });
  }
  els.pending.addEventListener('click', (event) => {
    const remove = event.target.closest('.attachment-remove');
    if (!remove) return;
    const item = state.attachments.find((a) => a.li === remove.closest('li.attachment-chip'));
    if (item) removeFile(item);
    if (els.prompt) els.prompt.focus();
  });
  // Drop files anywhere on the page; the composer shows where they go.
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes('Files');
  let depth = 0;
  document.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth += 1;
    els.composer.classList.add('is-dropping');
  });
  document.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('dragleave', (event) => {
    if (!hasFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) els.composer.classList.remove('is-dropping');
  });
  document.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault(); // never let the browser navigate to the file
    depth = 0;
    els.composer.classList.remove('is-dropping');
    addFiles(event.dataTransfer.files);
  });
}

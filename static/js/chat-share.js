// The owner's share dialog on the chat page: opened by "Share" in the top bar or by the share
// button of a conversation in the sidebar; lists who the conversation is shared with (revoke
// each), shares with colleagues by username and with the owner's own groups. The server checks
// everything again (assistant/chat/share_views.py) and says why it refuses.

import { postJSON, requestJSON, strings } from './net.js';
import { showToast } from './toast.js';

const API = {
  shares: (id) => `/chat/api/c/${encodeURIComponent(id)}/shares/`,
};

// The dialog's parts (templates/chat/_share_dialog.html), by the name this module gives them.
const IDS = {
  form: 'share-form', usernames: 'share-usernames', groups: 'share-group-list', noGroups: 'share-no-groups',
  error: 'share-error', submit: 'share-submit', list: 'share-list', none: 'share-none', viewLink: 'share-view-link',
};

let S = {};
const els = {};
let conversationId = '';

function showError(text) {
  els.error.textContent = text || '';
  els.error.hidden = !text;
}

function shareItem(share) {
  const li = document.createElement('li');
  li.className = 'share-item';
  li.dataset.id = share.id;
  li.dataset.kind = share.kind;
  const name = document.createElement('span');
  name.className = 'share-name';
  name.textContent = share.label;
  if (share.kind === 'group') {
    const tag = document.createElement('span');
    tag.className = 'share-kind';
    tag.textContent = S.group;
    name.append(' ', tag);
  } else if (share.label !== share.name) {
    const username = document.createElement('span');
    username.className = 'share-username';
    username.textContent = share.name;
    name.append(' ', username);
  }
  const revoke = document.createElement('button');
  revoke.type = 'button';
  revoke.className = 'button button-secondary share-revoke';
  revoke.textContent = S.revoke;
  revoke.setAttribute('aria-label', S.revokeLabel.replace('{name}', share.label));
  revoke.dataset.url = share.revoke_url;
  revoke.dataset.label = share.label;
  li.append(name, revoke);
  return li;
}

function groupBox(name, checked) {
  const label = document.createElement('label');
  label.className = 'share-group';
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.name = 'groups';
  box.value = name;
  box.checked = checked;
  box.disabled = checked; // already shared with it: revoke below
  label.append(box, ` ${name}`);
  return label;
}

function draw(data) {
  const shares = Array.isArray(data.shares) ? data.shares : [];
  els.list.replaceChildren(...shares.map(shareItem));
  els.none.hidden = shares.length > 0;
  const sharedGroups = new Set(shares.filter((s) => s.kind === 'group').map((s) => s.name));
  const groups = Array.isArray(data.groups) ? data.groups : [];
  els.groups.replaceChildren(...groups.map((g) => groupBox(g, sharedGroups.has(g))));
  els.noGroups.hidden = groups.length > 0;
  if (data.view_url) els.viewLink.href = data.view_url;
  document.querySelectorAll(`li.conversation-item[data-id="${CSS.escape(conversationId)}"]`).forEach((li) => {
    li.dataset.shared = String(shares.length > 0);
  });
}

async function open(id) {
  if (!id) return;
  conversationId = id;
  showError('');
  els.usernames.value = '';
  els.list.replaceChildren();
  els.none.hidden = true;
  if (!els.dialog.open) els.dialog.showModal();
  els.usernames.focus();
  try {
    draw(await requestJSON(API.shares(id)));
  } catch (err) {
    showError((err && err.message) || S.loadFailed);
  }
}

async function share(event) {
  event.preventDefault();
  showError('');
  const groups = Array.from(els.groups.querySelectorAll('input[name="groups"]:checked:not(:disabled)')).map((b) => b.value);
  els.submit.disabled = true;
  try {
    const data = await postJSON(API.shares(conversationId), { usernames: els.usernames.value, groups });
    els.usernames.value = '';
    draw(data);
    showToast(S.shared);
  } catch (err) {
    showError((err && err.message) || S.server);
    if (err && err.data && err.data.param === 'usernames') els.usernames.focus();
  } finally {
    els.submit.disabled = false;
  }
}

async function revoke(button) {
  button.disabled = true;
  try {
    draw(await postJSON(button.dataset.url, {}));
    showToast(S.revoked.replace('{name}', button.dataset.label || ''));
  } catch (err) {
    button.disabled = false;
    showError((err && err.message) || S.server);
  }
}

function init() {
  els.dialog = document.getElementById('share-dialog');
  if (!els.dialog) return;
  S = strings('share-strings', {
    revoke: 'Revoke',
    revokeLabel: 'Stop sharing with {name}',
    group: 'group',
    shared: 'Shared.',
    revoked: 'No longer shared with {name}.',
    loadFailed: 'Could not load who this conversation is shared with.',
    server: 'Something went wrong. Please try again.',
  });
  for (const [key, id] of Object.entries(IDS)) els[key] = document.getElementById(id);
  els.form.addEventListener('submit', share);
  document.getElementById('share-close').addEventListener('click', () => els.dialog.close());
  els.list.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('.share-revoke') : null;
    if (button) revoke(button);
  });
  // The top bar's button names the open conversation; a sidebar row's button, its own.
  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const top = target && target.closest('#share-open');
    const row = target && target.closest('.conversation-item .share-button');
    if (!top && !row) return;
    event.preventDefault();
    open(top ? top.dataset.conversationId : row.closest('li.conversation-item').dataset.id);
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}

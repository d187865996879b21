// The sidebar's controls on the chat page: rename in place, delete with a confirmation, and the
// menu that shows the sidebar on a phone.

import { postJSON } from './net.js';
import { sidebarTouch } from './sidebar.js';
import { S, els, updateConversationTitle } from './chat-core.js';

export function openRename(li) {
  const form = li.querySelector('.rename-form');
  if (!form) return;
  const input = form.querySelector('input[name="title"]');
  li.classList.add('renaming');
  form.hidden = false;
  if (input) {
    input.focus();
    input.select();
  }
}

export function closeRename(li, restore = true) {
  const form = li.querySelector('.rename-form');
  if (!form) return;
  const input = form.querySelector('input[name="title"]');
  if (restore && input) input.value = input.defaultValue;
  form.hidden = true;
  li.classList.remove('renaming');
}

// Rename in place; the page (and anything typed in the composer) stays as it is.
export async function renameConversation(li, form, title) {
  const input = form.querySelector('input[name="title"]');
  try {
    const data = await postJSON(form.action, { title });
    input.defaultValue = data.title;
    closeRename(li, false);
    if (li.dataset.id === els.messages.dataset.conversationId) updateConversationTitle(li.dataset.id, data.title);
    else sidebarTouch(li.dataset.id, data.title);
  } catch (error) {
    input.setCustomValidity(error.message);
    input.reportValidity();
    input.addEventListener('input', () => input.setCustomValidity(''), { once: true });
  }
}

export function wireSidebarControls() {
  if (els.list) {
    els.list.addEventListener('click', (event) => {
      const button = event.target.closest('.rename-button');
      if (!button) return;
      event.preventDefault();
      const li = button.closest('li.conversation-item');
      const form = li && li.querySelector('.rename-form');
      if (!form) return;
      if (form.hidden) openRename(li);
      else closeRename(li);
    });
    els.list.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      const form = event.target.closest('.rename-form');
      if (!form) return;
      event.preventDefault();
      const li = form.closest('li.conversation-item');
      closeRename(li);
      const button = li.querySelector('.rename-button');
      if (button) button.focus();
    });
    els.list.addEventListener('submit', (event) => {
      const form = event.target;
      if (form.classList.contains('delete-form')) {
        if (!window.confirm(S.confirmDelete)) event.preventDefault();
        return;
      }
      if (form.classList.contains('rename-form')) {
        event.preventDefault();
        const li = form.closest('li.conversation-item');
        const input = form.querySelector('input[name="title"]');
        if (!input || !input.value.trim()) {
          closeRename(li);
          return;
        }
        renameConversation(li, form, input.value);
      }
    });
    els.list.addEventListener('focusout', (event) => {
      const form = event.target.closest && event.target.closest('.rename-form');
      if (!form || form.hidden) return;
      const li = form.closest('li.conversation-item');
      // Leaving the field (not to its own rename button) cancels the edit.
      window.setTimeout(() => {
        if (form.hidden || form.contains(document.activeElement)) return;
        if (li.querySelector('.rename-button') === document.activeElement) return;
        closeRename(li);
      }, 150);
    });
  }

  const toggle = document.getElementById('sidebar-toggle');
  const backdrop = document.getElementById('sidebar-backdrop');
  const setOpen = (open) => {
    document.body.classList.toggle('sidebar-open', open);
    if (toggle) {
      toggle.setAttribute('aria-expanded', String(open));
      toggle.setAttribute('aria-label', open ? S.hideSidebar : S.showSidebar);
    }
  };
  if (toggle) {
    toggle.addEventListener('click', () => setOpen(!document.body.classList.contains('sidebar-open')));
  }
  if (backdrop) backdrop.addEventListener('click', () => setOpen(false));
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && document.body.classList.contains('sidebar-open') && !(event.target instanceof Element && event.target.closest('.rename-form'))) {
      setOpen(false);
      if (toggle) toggle.focus();
    }
  });
}

// The memory switch in the user menu: turned on or off without leaving the page.
// (Without JavaScript the same form posts and comes back.)
import { csrfToken } from './net.js';


function init() {
  const form = document.getElementById('memory-toggle-form');
  if (!form) return;
  const button = form.querySelector('#memory-toggle');
  const field = form.querySelector('input[name="enabled"]');
  const holder = document.getElementById('feature-strings');
  const failed = (holder && holder.dataset.memoryFailed) || 'Could not change the memory setting.';
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const enabled = field.value === 'true';
    button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrfToken() },
        body: JSON.stringify({ enabled }),
      });
      const data = await response.json().catch(() => null);
      if (!response.ok || !data) throw new Error(failed);
      button.setAttribute('aria-checked', String(Boolean(data.enabled)));
      field.value = data.enabled ? 'false' : 'true';
      button.removeAttribute('title');
    } catch (err) {
      button.title = err.message || failed;
    } finally {
      button.disabled = false;
    }
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}

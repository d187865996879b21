// The assistant picker in the chat header. In a conversation, a change is saved at once and
// applies to the next questions; before the first question, chat.js sends the choice along
// when it creates the conversation.
import { csrfToken } from './net.js';


function strings() {
  const holder = document.getElementById('feature-strings');
  return {
    set: (holder && holder.dataset.assistantSet) || 'Answers now come from {name}.',
    failed: (holder && holder.dataset.assistantFailed) || 'Could not change the assistant.',
  };
}

function init() {
  const select = document.getElementById('assistant-select');
  const status = document.getElementById('assistant-status');
  const messages = document.getElementById('messages');
  if (!select || !messages) return;
  const S = strings();
  let saved = select.value;

  const describe = () => {
    const option = select.selectedOptions[0];
    select.title = (option && (option.dataset.description || option.textContent)) || '';
  };
  describe();

  select.addEventListener('change', async () => {
    describe();
    const option = select.selectedOptions[0];
    const name = option ? option.textContent.trim() : '';
    const conversationId = messages.dataset.conversationId;
    if (!conversationId) {
      if (status) status.textContent = S.set.replace('{name}', name);
      saved = select.value;
      return;
    }
    try {
      const response = await fetch(`/chat/api/c/${encodeURIComponent(conversationId)}/assistant/`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrfToken() },
        body: JSON.stringify({ assistant_id: select.value }),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data.error || S.failed);
      saved = select.value;
      if (status) status.textContent = S.set.replace('{name}', data.name || name);
    } catch (err) {
      select.value = saved;
      describe();
      if (status) status.textContent = (err && err.message) || S.failed;
    }
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}

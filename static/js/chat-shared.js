// The read-only view of a shared conversation (templates/chat/shared.html): highlighted code with
// copy buttons, citation tooltips, folded steps, "Show all sources" and query results (tables,
// charts, CSV downloads run as the viewer). Nothing on this page writes to the conversation.

import { initMessages } from './messages.js';
import { loadStrings } from './chat-core.js';
import { applyCiteTitles } from './chat-render.js';
import { wireSources } from './chat-sources.js';
import { wireQueries } from './chat-query.js';
import { wireSteps } from './chat-steps.js';

function init() {
  const messages = document.getElementById('messages');
  if (!messages) return;
  loadStrings();
  messages.querySelectorAll('article.message-assistant').forEach(applyCiteTitles);
  // Only the copy buttons of code blocks are drawn here: no toolbar, so no regenerate, edit or versions.
  initMessages({ isBusy: () => true, afterRender: () => {} });
  wireSteps(messages);
  wireSources(messages);
  wireQueries(messages);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}

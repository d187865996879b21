// Source document view: bring the cited passage into view.
function showPassage() {
  const passage = document.getElementById('passage');
  if (!passage || !passage.textContent.trim()) return;
  const reduceMotion = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  passage.scrollIntoView({ block: 'center', behavior: reduceMotion ? 'auto' : 'smooth' });
  passage.classList.add('passage-flash');
}

// "Back to chat" returns to the conversation the reader came from when possible.
function wireBackLink() {
  const back = document.getElementById('back-link');
  if (!back || !document.referrer) return;
  try {
    const ref = new URL(document.referrer);
    if (ref.origin === window.location.origin && ref.pathname.startsWith('/chat/c/')) {
      back.href = ref.pathname;
    }
  } catch {
    /* ignore malformed referrer */
  }
}

function init() {
  wireBackLink();
  showPassage();
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}

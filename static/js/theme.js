// Light / dark theme. Loaded (not deferred) in <head> so the page paints in the right theme
// at once; the choice is remembered in localStorage ("light" or "dark"; none: follow the system).
(function () {
  'use strict';
  var KEY = 'assistant-theme';

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === 'light' || value === 'dark' ? value : 'system';
    } catch (e) {
      return 'system';
    }
  }

  function apply(choice) {
    var root = document.documentElement;
    if (choice === 'light' || choice === 'dark') root.setAttribute('data-theme', choice);
    else root.removeAttribute('data-theme');
  }

  function effective(choice) {
    if (choice !== 'system') return choice;
    return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }

  apply(stored());

  function label(button, choice) {
    var text = button.getAttribute('data-label-' + choice) || choice;
    var span = button.querySelector('.theme-toggle-label');
    if (span) span.textContent = text;
    button.setAttribute('data-choice', choice);
    button.setAttribute('data-effective', effective(choice));
    button.title = text;
  }

  function wire() {
    var button = document.getElementById('theme-toggle');
    if (!button) return;
    label(button, stored());
    button.addEventListener('click', function () {
      // Flip what is shown; until the first click the system's preference is followed.
      var next = effective(stored()) === 'dark' ? 'light' : 'dark';
      try {
        window.localStorage.setItem(KEY, next);
      } catch (e) {
        /* private mode: the choice lasts for this page only */
      }
      apply(next);
      label(button, next);
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', wire);
  else wire();
})();

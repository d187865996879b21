// Short messages at the bottom of the page, optionally with one action (Undo).

export function toast(message, { action = '', onAction = null, seconds = 6 } = {}) {
  const region = document.getElementById('toast-region');
  if (!region) return null;
  region.querySelectorAll('.toast').forEach((t) => t.remove());
  const div = document.createElement('div');
  div.className = 'toast';
  const text = document.createElement('span');
  text.className = 'toast-text';
  text.textContent = message;
  div.append(text);
  let timer = null;
  const close = () => {
    window.clearTimeout(timer);
    div.remove();
  };
  if (action && onAction) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'toast-action';
    button.textContent = action;
    button.addEventListener('click', () => {
      close();
      onAction();
    });
    div.append(button);
  }
  region.append(div);
  timer = window.setTimeout(close, seconds * 1000);
  return div;
}

export function showToast(message, seconds = 4) {
  return toast(message, { seconds });
}

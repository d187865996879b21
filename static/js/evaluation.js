// The evaluation pages: a queued or running run shows its progress, read every 2 s from
// runs/<id>/progress/, and the page reloads with the results when it ends.
const status = document.getElementById('run-status');
const ACTIVE = new Set(['queued', 'running']);

async function poll() {
  let data;
  try {
    const response = await fetch(status.dataset.progressUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    data = await response.json();
  } catch {
    setTimeout(poll, 5000);
    return;
  }
  const bar = document.getElementById('run-progress');
  bar.max = Math.max(1, data.total);
  bar.value = data.done;
  status.querySelector('.run-count').textContent = `${data.done}/${data.total}`;
  status.querySelector('.run-status-label').textContent = data.label;
  status.dataset.status = data.status;
  if (ACTIVE.has(data.status)) setTimeout(poll, 2000);
  else window.location.reload();
}

if (status && ACTIVE.has(status.dataset.status)) setTimeout(poll, 2000);

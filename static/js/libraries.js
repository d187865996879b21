// A library's page: while files wait to be indexed, the list follows them (queued → indexed or
// failed with the reason) by re-reading this page every few seconds; nothing else on it changes.

const LIST = "library-file-list";
const EVERY_MS = 3000;
const GIVE_UP_AFTER = 200; // about ten minutes: a sync that long is followed by reloading

async function follow(left) {
  const list = document.getElementById(LIST);
  if (!list || !list.querySelector("#library-waiting") || left <= 0) return;
  try {
    const response = await fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.ok) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById(LIST);
      if (fresh) list.replaceWith(document.adoptNode(fresh));
    }
  } catch {
    // the network dropped: try again at the next tick
  }
  window.setTimeout(() => follow(left - 1), EVERY_MS);
}

window.setTimeout(() => follow(GIVE_UP_AFTER), EVERY_MS);

// Words the pages' scripts show, translated by the server into a <template id="…"> element's data-*
// attributes (connectors/ui_strings.py); "{name}" placeholders are filled in here.
export function wordsFrom(holderId) {
  return (key, fallback, params = {}) => {
    const holder = document.getElementById(holderId);
    const text = (holder && holder.dataset[key]) || fallback;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  };
}

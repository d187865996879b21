// Documents a source will produce, as the connectors pages preview them (Test connection, the
// dataset editor): title, where it comes from and who will see it, the start of its text.
import { wordsFrom } from './words.js';

const t = wordsFrom('connectors-strings');

function aclText(acl) {
  if (!acl || !acl.from_source) return t('connectorAccess', "the connector's access");
  if (acl.public) return t('everyone', 'everyone');
  return acl.groups && acl.groups.length ? acl.groups.join(', ') : t('nobody', 'nobody');
}

function paragraph(className, text) {
  const node = document.createElement('p');
  node.className = className;
  node.textContent = text;
  return node;
}

export function renderPreviewList(list, items) {
  list.replaceChildren();
  for (const item of items || []) {
    const li = document.createElement('li');
    const meta = [item.location, t('visibleTo', 'visible to {who}', { who: aclText(item.acl) })].filter(Boolean).join(' · ');
    li.append(
      paragraph('preview-title', item.title || item.external_id || ''),
      paragraph('preview-meta', meta),
      paragraph('preview-text', item.text || ''),
    );
    list.append(li);
  }
}

// Staff: "Make an evaluation case" under an answer. Answers streamed in after the page loaded get
// their toolbar from a template without the answer's id; it is added when the link is followed.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a.make-case-link');
  if (!link || link.search.includes('message=')) return;
  const article = link.closest('[data-message-id]');
  if (!article) return;
  link.search = `?message=${encodeURIComponent(article.dataset.messageId)}`;
});

"""Contextual chunks: a document's headings, and each chunk's heading chain.

- Document.headings: [offset, level, text] of the headings the parser saw (HTML h1-h6,
  Markdown #, Word heading styles, PDF bookmarks), offsets into Document.text.
- Chunk.section: the headings above the chunk ("Travel policy › Abroad"), searched as full
  text and embedded in the chunk's header (connectors/chunk_context.py).

Both start empty: existing chunks keep their vectors until their documents are next indexed
(a changed file, or a re-index), which fills them.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("connectors", "0005_connector_description")]

    operations = [
        migrations.AddField(
            model_name="document",
            name="headings",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="The text's headings as [offset, level, text] (HTML, Markdown, PDF bookmarks, Word styles).",
            ),
        ),
        migrations.AddField(
            model_name="chunk",
            name="section",
            field=models.TextField(
                blank=True, default="", help_text="The headings above the chunk, outermost first, joined by ' › '."
            ),
        ),
    ]

"""Full text for BM25: the title in every chunk's search_vector, and the vector kept in the row.

- search_vector = setweight(to_tsvector(language, title), 'A') || to_tsvector(language, text),
  as connectors.search.bm25.chunk_search_vector computes it for new chunks.
- STORAGE MAIN for search_vector and embedding: ranking reads the tsvector of every full-text
  candidate, and an exact (filtered) vector search or the distance of each HNSW hit reads the
  embedding; kept in the heap row instead of out of line in TOAST, each read is one page
  instead of a TOAST index lookup and more pages (measured on bench/retrieval.py's 1% reader:
  the dense query 20-30% faster). The backfill rewrites every search_vector; embeddings move
  in when their chunks are next written.
"""

from django.db import migrations

BACKFILL = """
UPDATE connectors_chunk AS c
SET search_vector = setweight(to_tsvector(d.language::regconfig, COALESCE(d.title, '')), 'A')
                    || to_tsvector(d.language::regconfig, COALESCE(c.text, ''))
FROM connectors_document AS d
WHERE d.id = c.document_id
"""

BACKFILL_REVERSE = """
UPDATE connectors_chunk AS c
SET search_vector = to_tsvector(d.language::regconfig, COALESCE(c.text, ''))
FROM connectors_document AS d
WHERE d.id = c.document_id
"""


class Migration(migrations.Migration):
    dependencies = [("connectors", "0002_sync_pipeline")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE connectors_chunk ALTER COLUMN search_vector SET STORAGE MAIN",
            "ALTER TABLE connectors_chunk ALTER COLUMN search_vector SET STORAGE EXTENDED",
        ),
        migrations.RunSQL(
            "ALTER TABLE connectors_chunk ALTER COLUMN embedding SET STORAGE MAIN",
            "ALTER TABLE connectors_chunk ALTER COLUMN embedding SET STORAGE EXTERNAL",
        ),
        migrations.RunSQL(BACKFILL, BACKFILL_REVERSE),
    ]

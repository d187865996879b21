"""STORAGE MAIN for the chunks' acl_groups: the group array stays in the heap row.

A chunk row is over TOAST's 2 kB target (the float32 embedding and the tsvector, both kept in the
row by migration 0003), so PostgreSQL moved every other varlena column out of line, the few bytes
of acl_groups included. Every search checks `acl_public OR acl_groups && groups` on each candidate
it is not sure of: out of line that is a TOAST index lookup and a page per chunk (45,600 buffers
to check 10,000 chunks of one source against 5,760 in the row: bench/retrieval.py at a million
chunks, README). Catalog only: chunks already stored keep their out-of-line arrays until they are
next written (a sync, an ACL change, `manage.py index_rebuild`); rewriting them here would update
every index of every chunk.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("connectors", "0009_chunk_embedding_halfvec")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE connectors_chunk ALTER COLUMN acl_groups SET STORAGE MAIN",
            "ALTER TABLE connectors_chunk ALTER COLUMN acl_groups SET STORAGE EXTENDED",
        ),
    ]

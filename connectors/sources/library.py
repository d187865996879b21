"""A library: a user's own set of uploaded files (connectors.libraries creates and shares it).

It reads its folder exactly as an admin's upload connector does; only who owns it and who
may see it differ, and those live on the connector (owner, groups, colleagues), not here.
"""

from __future__ import annotations

from typing import ClassVar

from connectors.sources.upload import UploadSource


class LibrarySource(UploadSource):
    kind = "library"
    label = "Library"
    #: Created by users from their libraries page, never from the connectors pages.
    user_owned: ClassVar[bool] = True

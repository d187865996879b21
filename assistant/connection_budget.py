"""How many PostgreSQL connections the whole deployment may open, and whether the server allows it.

Each web process lends pooled connections (DATABASE_POOL_SIZE, default WEB_POOL_SIZE_DEFAULT in
assistant/asgi.py; the search side threads borrow from the same pool); each Celery worker
process keeps one; beat keeps one. docker-compose.yml sizes PostgreSQL's max_connections
(POSTGRES_MAX_CONNECTIONS) to hold that sum with room for maintenance sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Pooled connections per web process when DATABASE_POOL_SIZE is not set.
WEB_POOL_SIZE_DEFAULT = 20
#: Left free for migrations, psql sessions and PostgreSQL's own superuser reserve (3 by default).
MAINTENANCE_CONNECTIONS = 10


@dataclass(frozen=True)
class ConnectionBudget:
    web_processes: int
    pool_size: int
    worker_processes: int
    answer_threads: int = 0  # the answer worker's threads (ANSWER_RUNNER=worker), one connection each

    @property
    def needed(self) -> int:
        """Connections the app may hold at once, plus the maintenance reserve."""
        return (self.web_processes * self.pool_size + self.worker_processes + self.answer_threads + 1
                + MAINTENANCE_CONNECTIONS)

    def explain(self) -> str:
        return (
            f"{self.web_processes} web process(es) x {self.pool_size} pooled connections + "
            f"{self.worker_processes} worker process(es) + {self.answer_threads} answer thread(s) + 1 beat + "
            f"{MAINTENANCE_CONNECTIONS} reserved = {self.needed}"
        )

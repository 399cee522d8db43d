"""Every exit code of the ``featurestore`` command, in one place (``docs/cli.md`` has the same
table, and a test keeps the two and the code in step):

====  ===============================================================================
0     success
1     the command failed (one ``Error:`` line on stderr); also a check that found a
      problem in a run that worked: ``consistency-check`` (a difference), ``access
      check`` (denied), ``erase`` (the entity is still there)
2     usage error (Click): unknown command or option, missing or invalid value
3     the data or the definitions are the problem, not the run: ``validate`` failed,
      ``drift`` found drift, ``plan --fail-on-breaking`` found breaking changes,
      ``status`` found a view whose freshness objective is breached
4     ``serve`` (or ``ui``) cannot listen on ``--host``/``--port`` (the port is in use, or the
      address is not available here or not permitted)
====  ===============================================================================
"""

from __future__ import annotations

__all__ = ["CANNOT_LISTEN", "ERROR", "FINDING", "OK", "USAGE"]

OK = 0
ERROR = 1
USAGE = 2
FINDING = 3
CANNOT_LISTEN = 4

"""gunicorn's access log without the credentials some URLs carry (ticketing/logscrub.py).

Run gunicorn with `--logger-class ticketing.gunicorn_logger.ScrubbingLogger` (the
Procfile and deploy/minhu-web.service do). Every atom of the access-log format that
can hold a URL is scrubbed, so an operator's own `--access-logformat` is safe too.
"""
from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from ticketing.logscrub import scrub_path, scrub_target

# Atoms holding a whole target or URL; the path and query atoms are handled apart.
URL_ATOMS = ("f", "{referer}i", "{raw_uri}e", "{request_uri}e")


class ScrubbingLogger(Logger):
    """gunicorn's logger whose access-log atoms pass through `scrub_target`."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        """gunicorn's atoms, with signatures, credentials and tokens taken out of URLs."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        target = scrub_target(str(environ.get("RAW_URI") or ""))
        atoms["r"] = f"{environ.get('REQUEST_METHOD')} {target} {environ.get('SERVER_PROTOCOL')}"
        path = str(environ.get("PATH_INFO") or "")
        atoms["U"] = scrub_path(path)
        atoms["q"] = scrub_target(f"{path}?{environ.get('QUERY_STRING') or ''}").partition("?")[2]
        atoms["{path_info}e"] = atoms["U"]
        atoms["{query_string}e"] = atoms["q"]
        for name in URL_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = scrub_target(atoms[name])
        return atoms


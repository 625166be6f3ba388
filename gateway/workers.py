"""`sisada serve --workers N`: uvicorn's supervisor, with SIGHUP reloading the policy.

uvicorn's supervisor answers SIGHUP by replacing every worker with a new process: live
feeds drop without `POLICY_RELOADED`, and a broken policy crashes each replacement with a
traceback (the old worker is kept). A gateway reloads its policy in place on SIGHUP
(`AppState.reload_policy`: a broken one changes nothing, and is one log line), so the
supervisor passes the signal on to each worker instead.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from gateway.logging import log


def serve_workers(app: str, workers: int, options: dict[str, Any]) -> None:
    """What `uvicorn.run(app, factory=True, workers=N, **options)` does, with our
    supervisor."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class PolicyReloadingSupervisor(Multiprocess):
        def handle_hup(self) -> None:
            for process in self.processes:
                if process.pid is not None and process.process.is_alive():
                    os.kill(process.pid, signal.SIGHUP)
            log.info("policy.reload_requested", workers=len(self.processes))

    config = uvicorn.Config(app, factory=True, workers=workers, **options)
    sockets = [config.bind_socket()]
    try:
        PolicyReloadingSupervisor(config, sockets=sockets).run()
    finally:
        for sock in sockets:
            sock.close()

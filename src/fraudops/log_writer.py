"""The log writer's process: ``python -m fraudops.log_writer [--spec S] [--parent-pid PID]``.

``fraudops serve`` starts it beside the server (serving/server.py) as a process of its own entry
point, not through the CLI; ``fraudops log-writer`` runs the same loop in the foreground. Its
clients come from one ``Runtime``: the spool's drainer and the subscribers to its commits (the
dashboard's aggregates, the log tables' maintenance). Settings: ``FRAUDOPS_CONFIG`` and the
environment, as for every process.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from fraudops.config import load_settings
from fraudops.runtime import Runtime

if TYPE_CHECKING:
    from fraudops.inference_log.base import DrainReport
    from fraudops.inference_log.writer import SpoolWriter


def spool_writer(runtime: Runtime) -> SpoolWriter:
    """The runtime's drainer of the spool (whatever ``serving.log_backend`` says: this process
    drains the spool the server writes)."""
    from fraudops.inference_log.writer import SpoolWriter

    writer = runtime.log_drainer(backend="spool")
    assert isinstance(writer, SpoolWriter)
    return writer


def run_until_signalled(writer: SpoolWriter, parent_pid: int | None = None) -> DrainReport:
    """Drain until SIGTERM/SIGINT or the death of ``parent_pid``, then drain once more."""
    log_to_stderr()
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return writer.run(stop, parent_pid=parent_pid)


def log_to_stderr() -> None:
    # A long-running writer's commits and failures are its log; stdout stays for --json.
    logger = logging.getLogger("fraudops")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fraudops.log_writer",
        description="Commit the inference-log spool to `predictions` until SIGTERM/SIGINT.",
    )
    parser.add_argument("--spec", help="the feature spec (default: the configured one)")
    parser.add_argument(
        "--parent-pid", type=int, help="exit (after a final drain) when this process dies"
    )
    args = parser.parse_args(argv)
    with Runtime(load_settings(), args.spec) as runtime:
        run_until_signalled(spool_writer(runtime), args.parent_pid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

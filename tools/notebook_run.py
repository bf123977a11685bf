"""Execute a notebook with nbclient, every wait bounded and a stalled run retried.

Used by `tools/build_lessons.py` and `tools/benchmark.py`; `tools/run_tests.py`
gives nbval the same cell timeout.

Why executions stalled. While nbclient waits for a cell's ``execute_reply`` (an
asyncio poll on the shell socket), its stand-in for the ipywidgets Output widget
that every lesson's interactive figure uses sends ``comm_msg`` updates on that same
socket. jupyter_client's ``Session.send`` writes them through a blocking shadow of
the asyncio socket, and a blocking send makes libzmq process the socket's pending
commands, which consumes the edge-triggered ``ZMQ_FD`` wake-up of a reply that has
just arrived. pyzmq's asyncio layer re-checks ``ZMQ_EVENTS`` after its own sends
(pyzmq#1208) but never sees this one, so the reply sits in the socket until the
poll's timer, the cell timeout, fires; then nbclient finds it and carries on. That
is the 605 s run of a 5 s notebook under a 600 s timeout. A loaded machine widens
the window between the reply's arrival and the send.

:class:`KernelManager` hands nbclient a client whose shell channel sends through
the asyncio socket itself, so pyzmq re-arms the wait. :data:`CELL_TIMEOUT` bounds
whatever else could stall, and :func:`execute` runs a notebook again, from the top
in a fresh kernel, after a cell timeout, a dead kernel or lost output.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Type

# Seconds one cell may take. With the models trained (train_course_models) the
# slowest cell of the heaviest lessons (05, 08, 09, 14, 15) took 16 s on two cores
# under a load of 12; the margin covers a slower machine, and a stall now costs
# two minutes, not ten.
CELL_TIMEOUT = 120
# Seconds to wait, after a cell's reply, for the rest of its output. nbclient's
# default (4 s, then a warning) would store a notebook with output missing.
OUTPUT_TIMEOUT = 30


class _AsyncSocketWriter:
    """What ``Session.send`` needs of a socket, backed by the asyncio socket's own
    ``send_multipart``, which sends at once when it can and then re-checks the
    socket for the pending waits."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket

    def send_multipart(self, parts: list, flags: int = 0, copy: bool = True, track: bool = False) -> None:
        self._socket.send_multipart(parts, flags=flags, copy=copy)


class ShellChannel(AsyncZMQSocketChannel):
    """Shell channel whose sends cannot swallow the wake-up of a pending reply."""

    def send(self, msg: dict[str, Any]) -> None:
        assert self.socket is not None
        self.session.send(_AsyncSocketWriter(self.socket), msg)


class KernelClient(AsyncKernelClient):
    shell_channel_class = Type(ShellChannel)


class KernelManager(AsyncKernelManager):
    """nbclient's kernel manager, handing out :class:`KernelClient`."""

    client_factory = Type(KernelClient)


# Worker processes for the course models' prebuild: one per core (each trains on one thread).
PREBUILD_JOBS = max(1, min(4, os.cpu_count() or 1))


def train_course_models(root: Path) -> None:
    """Train and cache the models the lessons load, so that no cell trains one
    (minutes, not seconds) under :data:`CELL_TIMEOUT`."""
    subprocess.run([sys.executable, "-m", "labkit.lm.cache", "prebuild", f"--jobs={PREBUILD_JOBS}"], cwd=root, check=True)


def execute(nb: nbformat.NotebookNode, cwd: Path, name: str = "notebook", attempts: int = 2,
            cell_timeout: int = CELL_TIMEOUT, **options: Any) -> tuple[nbformat.NotebookNode, int]:
    """Execute a copy of ``nb`` in a fresh kernel started in ``cwd``.

    Parameters
    ----------
    nb : NotebookNode
        The notebook; it is not modified.
    cwd : Path
        The kernel's working directory.
    name : str
        What to call the notebook when saying that a run is retried.
    attempts : int
        Runs allowed; a run that ends in a cell timeout, a dead kernel or missing
        output is started again from the top.
    **options
        Further ``nbclient.NotebookClient`` options.

    Returns
    -------
    notebook : NotebookNode
        The executed copy.
    attempts_used : int
        How many runs it took (more than 1 means one stalled).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        run = nbformat.from_dict(nb)  # a fresh copy: a failed attempt leaves partial outputs behind
        client = NotebookClient(
            run, kernel_name="python3", kernel_manager_class=KernelManager,
            timeout=cell_timeout, iopub_timeout=OUTPUT_TIMEOUT, raise_on_iopub_timeout=True,
            resources={"metadata": {"path": str(cwd)}}, **options,
        )
        try:
            client.execute()
        except (CellTimeoutError, DeadKernelError) as err:
            if attempt == attempts:
                raise
            print(f"retrying {name} in a fresh kernel after: {str(err).splitlines()[0]}", file=sys.stderr, flush=True)
            continue
        return run, attempt
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    """``python tools/notebook_run.py SOURCE EXECUTED``: run one notebook, cell errors kept as
    outputs, and write the executed copy (labkit.grading runs each student's notebook so, in
    a process of its own that imports nothing else)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("executed", type=Path)
    parser.add_argument("--cwd", type=Path, default=None, help="the kernel's working directory (default: SOURCE's)")
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT, help="seconds one cell may run")
    parser.add_argument("--attempts", type=int, default=1, help="runs allowed after a stall")
    args = parser.parse_args(argv)
    nb = nbformat.read(args.source, as_version=4)
    run, _ = execute(nb, args.cwd or args.source.parent, name=args.source.name, attempts=args.attempts,
                     cell_timeout=args.cell_timeout, allow_errors=True)
    nbformat.write(run, args.executed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

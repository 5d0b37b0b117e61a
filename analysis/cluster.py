"""Connection to a dask.distributed scheduler, shared by every lazy load in the process."""

from __future__ import annotations

import logging
from typing import Any

from analysis.errors import AnalysisError

log = logging.getLogger(__name__)

_clients: dict[str, Any] = {}


def connect(address: str, timeout: float = 10.0) -> Any:
    """Connect (once per address) to a dask.distributed scheduler and make it the default for compute()."""
    client = _clients.get(address)
    if client is not None and client.status == "running":
        return client
    try:
        from distributed import Client
    except ImportError as err:
        raise AnalysisError(
            "a scheduler address needs the 'distributed' package (pip install distributed)"
        ) from err
    try:
        client = Client(address, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError) as err:
        raise AnalysisError(f"cannot reach the dask scheduler at {address} ({err})") from err
    log.info("computing on dask scheduler %s", address)
    _clients[address] = client
    return client


def close_all() -> None:
    """Close every scheduler connection this process opened."""
    for client in _clients.values():
        client.close()
    _clients.clear()

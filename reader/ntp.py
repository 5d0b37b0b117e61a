"""Whether the host clock is NTP-synchronised, read from the kernel (adjtimex), cheap enough for every session."""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

TIME_ERROR = 5  # adjtimex's clock state when the clock is not synchronised (STA_UNSYNC set, or no NTP)
_TIMEX_SIZE = 512  # struct timex is 208 bytes on 64-bit Linux; room to spare


def ntp_synchronized() -> bool | None:
    """True when the kernel says an NTP client (systemd-timesyncd, chrony, ntpd) keeps the clock in sync;
    None when it cannot be asked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded (find_library runs ldconfig)
        timex = ctypes.create_string_buffer(_TIMEX_SIZE)  # modes = 0: read only, no privilege needed
        state = libc.adjtimex(timex)
    except (OSError, AttributeError) as err:
        log.debug("cannot read the clock's NTP state: %s", err)
        return None
    return None if state < 0 else state != TIME_ERROR

"""The cyclic garbage collector around bulk work on large plans.

A 20,000-action plan is about a million Python objects, none of them in a reference cycle. Every full
collection walks all of them (tenths of a second each), and building or holding such a plan sets off
several. Reference counting frees plans and returns without the collector, which is only needed for
cycles, and bulk work makes none; so around it the collector is paused, or told to skip what already
exists. Both restore the collector as they found it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """No collection while a large structure is built."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def sparing_existing() -> Iterator[None]:
    """Objects alive now (the plan) are left out of collections until the block ends; new ones are not.

    Left alone when something else has frozen objects already: unfreezing would undo its arrangement.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()

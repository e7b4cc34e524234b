"""The collector is left as it was found, whatever happens inside."""

from __future__ import annotations

import gc

import pytest

from daplan_xlsx import collector


def test_paused_restores_the_collector_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector.paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_paused_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_sparing_existing_freezes_for_the_block_only() -> None:
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), collector.sparing_existing():
        assert gc.get_freeze_count() > 0
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_sparing_existing_leaves_someone_elses_freeze_alone() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector.sparing_existing():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_as_a_decorator_each_call_pauses_and_restores() -> None:
    seen = []

    @collector.paused()
    def work() -> None:
        seen.append(gc.isenabled())

    work()
    work()
    assert seen == [False, False] and gc.isenabled()

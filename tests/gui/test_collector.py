"""The cycle collector beside a big document (gui.collector): off while it builds, one
collection after, what is alive frozen; undone for the next document and around a run."""
from __future__ import annotations

import gc

from gui import collector


class Cycle:
    def __init__(self):
        self.me = self


def test_a_big_document_is_frozen_after_one_collection_and_a_small_one_is_not():
    gc.unfreeze()
    with collector.settled():
        assert not gc.isenabled()  # no pause while it builds
        Cycle()  # garbage made while building
        collector.mark_big(5000)
    assert gc.isenabled() and gc.get_freeze_count() > 0
    assert not any(isinstance(o, Cycle) for o in gc.get_objects())  # collected, not frozen
    with collector.settled():  # the next document: the previous freeze is undone first
        assert gc.get_freeze_count() == 0
        collector.mark_big(12)
    assert gc.get_freeze_count() == 0  # small: the collector works as usual


def test_a_run_freezes_on_top_and_puts_the_documents_freeze_back():
    gc.unfreeze()
    with collector.settled():
        collector.mark_big(5000)
    collector.run_started()
    garbage = Cycle()
    del garbage  # made during the run: not frozen
    collector.run_ended()
    assert gc.get_freeze_count() > 0  # the document's freeze is back
    assert not any(isinstance(o, Cycle) for o in gc.get_objects())
    with collector.settled():
        collector.mark_big(3)
    assert gc.get_freeze_count() == 0


def test_a_failed_open_keeps_the_big_documents_freeze():
    gc.unfreeze()
    with collector.settled():
        collector.mark_big(5000)
    with collector.settled():  # Document.open failed: no document was built
        pass
    assert gc.get_freeze_count() > 0
    with collector.settled():
        collector.mark_big(3)  # a small document replaced it
    assert gc.get_freeze_count() == 0

"""The server-wide training cap in the page (issue 8): with every slot taken by other sessions,
Train live waits and shows its queue position, then trains once a slot frees."""

from tests.app.conftest import open_page
from views import common


def test_a_training_waits_for_a_slot_and_says_where_it_is_in_the_queue():
    others = [f"other-session-{i}" for i in range(common.SLOTS.limit)]
    for who in others:
        assert common.SLOTS.request(who) == 0
    try:
        at = open_page("straight_pairs")
        at.select_slider(key="sp_steps").set_value(300).run()
        next(b for b in at.button if b.label == "Train live").click().run()
        state = next(iter(at.session_state["runs"].values()))
        assert state.step == 0  # no slot: nothing trained
        waiting = [i.value for i in at.info if "Waiting for a training slot" in i.value]
        assert waiting and "number 1 in the queue" in waiting[0]
        common.SLOTS.release(others[0])
        at.run()
        assert state.step > 0 and not any("Waiting for a training" in i.value for i in at.info)
    finally:
        for who in others:
            common.SLOTS.release(who)
    assert not at.exception

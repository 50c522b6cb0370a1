"""The server-wide training cap in the page: with every slot taken by other sessions,
Train live waits and shows its queue position, then trains once a slot frees."""

from tests.app.conftest import open_page, reveal
from views import training


def test_a_training_waits_for_a_slot_and_says_where_it_is_in_the_queue():
    others = [f"other-session-{i}" for i in range(training.SLOTS.limit)]
    for who in others:
        assert training.SLOTS.request(who) == 0
    try:
        at = reveal(open_page("straight_pairs"))
        at.select_slider(key="sp_steps").set_value(300).run()
        next(b for b in at.button if b.label == "Train live").click().run()
        state = next(iter(at.session_state["runs"].values()))
        assert state.step == 0  # no slot: nothing trained
        waiting = [i.value for i in at.info if "Waiting for a training slot" in i.value]
        assert waiting and "number 1 in the queue" in waiting[0]
        training.SLOTS.release(others[0])
        at.run()
        assert state.step > 0 and not any("Waiting for a training" in i.value for i in at.info)
    finally:
        for who in others:
            training.SLOTS.release(who)
    assert not at.exception


def test_a_session_keeps_at_most_max_runs_and_says_which_went(monkeypatch):
    monkeypatch.setattr(training, "MAX_RUNS", 1)
    at = reveal(open_page("straight_pairs"))  # the training section follows the answer
    at.select_slider(key="sp_steps").set_value(300).run()
    next(b for b in at.button if b.label == "Train live").click().run()
    next(b for b in at.button if b.label == "Pause").click().run()  # a running one is kept
    at.select_slider(key="sp_steps").set_value(500).run()
    next(b for b in at.button if b.label == "Train live").click().run()
    runs = at.session_state["runs"]
    assert len(runs) == 1 and next(iter(runs.values())).cfg.steps == 500
    assert any("keeps at most 1 trained runs: removed the oldest (1-RF, independent" in t.value
               for t in at.toast)
    assert not at.exception

"""Classroom presets: each loads safely (weights_only), matches its recorded config, and has the
quality that its page claims, measured afresh against new samples of its data."""

import pytest
import torch

from flowviz import checkpoint, presets
from flowviz.experiment import phase_ids, phases
from flowviz.train import TrainState

SPECS = presets.specs()
MB = 2**20


def test_presets_exist_and_stay_small():
    assert {p.page for p in SPECS.values()} >= {"straight_pairs", "reflow", "shortcut",
                                                "meanflow"}
    sizes = {p.name: p.path.stat().st_size for p in SPECS.values()}
    assert sum(sizes.values()) < 4 * MB, sizes


@pytest.mark.parametrize("name", sorted(SPECS))
def test_preset_loads_with_weights_only_and_matches_its_config(name, monkeypatch):
    p = SPECS[name]
    seen = []
    real_load = torch.load

    def spy(*a, **k):
        seen.append(k.get("weights_only"))
        return real_load(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    done = presets.load(p)
    assert seen == [True]
    assert list(done) == list(phases(p.run))  # every phase, in order
    for s in done.values():
        assert s.done and s.meta["preset"] == name
        if isinstance(s, TrainState):
            assert s.step == s.cfg.steps and s.history
    assert presets.find(next(iter(phase_ids(p.run).values())))[0].name == name


@pytest.mark.parametrize("name", sorted(SPECS))
def test_preset_has_the_quality_its_page_claims(name):
    p = SPECS[name]
    results = presets.quality(p, presets.load(p))
    assert results and all(r["ok"] for r in results), results


def test_the_quality_check_can_fail():
    """An untrained network with the straight-pairs preset's config misses its claim."""
    p = SPECS["straight_pairs-moons-independent"]
    fresh = {"run": phases(p.run)["run"]({})}
    assert not any(r["ok"] for r in presets.quality(p, fresh))


def test_a_preset_trained_from_another_config_is_refused(tmp_path, monkeypatch):
    p = SPECS["straight_pairs-moons-independent"]
    other = SPECS["straight_pairs-moons-ot"].path.read_bytes()
    monkeypatch.setattr(presets, "DIR", tmp_path)
    (tmp_path / f"{p.name}.pt").write_bytes(other)
    with pytest.raises(checkpoint.CheckpointError, match="another config"):
        presets.load(p)


@pytest.mark.parametrize("text, message", [
    ("{", "JSONDecodeError"),
    ('{"kind": "fm", "page": "x", "config": {"stepz": 1}}', "stepz: unknown field"),
    ('{"kind": "cat", "page": "x", "config": {}}', "KeyError"),
    ('{"kind": "fm", "config": {}}', "KeyError: 'page'"),
    ('{"kind": "fm", "page": "x", "config": {}, "quality": [["rf9", 1, "<=", 1]]}',
     "bad quality claim"),
])
def test_a_broken_preset_file_is_a_clear_error(tmp_path, text, message):
    from flowviz.config import ConfigError

    (tmp_path / "broken.json").write_text(text)
    with pytest.raises(ConfigError, match=f"preset broken.json: .*{message}"):
        presets.spec(tmp_path / "broken.json")


@pytest.mark.parametrize("name", ["shortcut-moons", "meanflow-moons"])
def test_same_time_partner_steps_follow_the_recorded_step_costs(name):
    """A page's comparison run trained for the same time: its steps are the main preset's
    steps times the ratio of the step costs timed when it was made."""
    main, mate = SPECS[name], presets.partner_of(name)
    assert mate is not None and mate.page == main.page and mate.run.data_seed == main.run.data_seed
    ms_main, ms_mate = mate.cost_ms
    assert mate.run.optim.steps == max(1, round(main.run.optim.steps * ms_main / ms_mate))
    state = presets.load(mate)["run"]
    assert state.meta["cost"] == mate.cost_ms and state.step == mate.run.optim.steps

"""Config validation, overrides, round trips, presets."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

import grok
from grok.config import DYNAMIC_FIELDS, Config, split_dynamic
from grok.presets import config_from_mapping, config_from_toml


@pytest.mark.parametrize(
    "overrides, field, allowed",
    [
        ({"task.op": "pow"}, "task.op", "one of add"),
        ({"loss.kind": "hinge"}, "loss.kind", "softmax_ce"),
        ({"optim.kind": "lion"}, "optim.kind", "adamw"),
        ({"task.op": "div", "task.p": 96}, "task.p", "prime"),
        ({"task.corrupt_fraction": 1.5}, "task.corrupt_fraction", "[0.0, 1.0]"),
        ({"task.corrupt_fraction": -0.1}, "task.corrupt_fraction", "[0.0, 1.0]"),
        ({"task.train_fraction": 0.0}, "task.train_fraction", "(0.0, 1.0)"),
        ({"task.train_fraction": 1.2}, "task.train_fraction", "(0.0, 1.0)"),
        ({"task.train_fraction": 1.0}, "task.train_fraction", "(0.0, 1.0)"),  # no test pair would be left
        ({"seed": 2**31}, "seed", "[0, 2147483647]"),
        ({"task.data_seed": 2**40}, "task.data_seed", "[0, 2147483647]"),
        ({"model.widths": [200, 0]}, "model.widths[1]", ">= 1"),
        ({"model.widths": [-3]}, "model.widths[0]", ">= 1"),
        ({"optim.lr": 0.0}, "optim.lr", "(0.0"),
        ({"optim.lr": -1e-3}, "optim.lr", "(0.0"),
        ({"train.steps": 105, "train.log_every": 10}, "train.steps", "multiple of train.log_every=10"),
        ({"optim.colour": 1}, "optim.colour", "config field"),
        ({"train.probes": ["collapse", "magic"]}, "train.probes[1]", "ntk"),
    ],
)
def test_bad_input_names_field_value_and_allowed(overrides, field, allowed):
    with pytest.raises(grok.ConfigError) as err:
        Config().override(**overrides)
    message = str(err.value)
    assert message.startswith(f"{field}: got ")
    assert allowed in message
    assert err.value.field == field


def test_unknown_preset_is_a_config_error():
    with pytest.raises(grok.ConfigError, match="preset: got 'nope'"):
        grok.preset("nope")


def test_div_with_prime_p_is_fine():
    cfg = Config().override(**{"task.op": "div", "task.p": 97})
    assert cfg.task.n_pairs == 97 * 96


def test_override_returns_new_validated_frozen_copy():
    base = grok.preset("prieto-perpgrad")
    cfg = base.override(**{"optim.lr": 5e-3, "task.p": 97})
    assert cfg.optim.lr == 5e-3 and cfg.task.p == 97
    assert base.optim.lr == 1e-2 and base.task.p == 113
    with pytest.raises(AttributeError):
        cfg.seed = 3  # frozen


@pytest.mark.parametrize("name", sorted(grok.presets()))
def test_every_preset_round_trips_json_and_toml(name, tmp_path):
    cfg = grok.preset(name)
    assert Config.from_json(cfg.to_json()) == cfg
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert config_from_toml(path) == cfg


def test_toml_with_preset_and_tables(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "doshi-coexistence"\nseed = 4\n[optim]\nweight_decay = 5.0\n[set]\n"task.p" = 23\n')
    cfg = config_from_toml(path)
    assert (cfg.seed, cfg.optim.weight_decay, cfg.task.p, cfg.model.kind) == (4, 5.0, 23, "quadratic_mlp")


def test_unknown_section_field_in_file_is_rejected():
    with pytest.raises(grok.ConfigError, match="optim.learning_rate"):
        config_from_mapping({"optim": {"learning_rate": 1.0}})


def test_split_dynamic_separates_numbers_from_structure():
    a = grok.preset("doshi-coexistence")
    b = a.override(**{"optim.weight_decay": 15.0, "optim.lr": 3e-3, "seed": 7, "task.corrupt_fraction": 0.1})
    sa, da = split_dynamic(a)
    sb, db = split_dynamic(b)
    assert sa == sb
    assert set(da) == set(DYNAMIC_FIELDS)
    assert (db["optim.weight_decay"], db["seed"], db["task.data_seed"]) == (15.0, 7, 7)
    c = a.override(**{"task.p": 23})
    assert split_dynamic(c)[0] != sa


@given(
    lr=st.floats(1e-6, 1.0),
    wd=st.floats(0.0, 50.0),
    xi=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_dynamic_overrides_never_change_the_static_part(lr, wd, xi, seed):
    base = grok.preset("doshi-coexistence")
    cfg = base.override(**{"optim.lr": lr, "optim.weight_decay": wd, "task.corrupt_fraction": xi, "seed": seed})
    assert split_dynamic(cfg)[0] == split_dynamic(base)[0]


def test_presets_have_descriptions_and_build():
    names = grok.presets()
    for required in (
        "prieto-perpgrad",
        "prieto-stablemax",
        "prieto-softmax-collapse",
        "doshi-coexistence",
        "doshi-partial-inversion",
        "doshi-full-inversion",
        "doshi-forgetting",
        "kumar-fig1",
        "kumar-fig3a",
    ):
        assert required in names and names[required]
        assert grok.preset(required).description == names[required]


def test_neuron_probe_needs_a_modular_mlp():
    with pytest.raises(grok.ConfigError, match="train.probes: got \\['neurons'\\]"):
        grok.preset("kumar-fig1").override(**{"train.probes": ["neurons"]})

"""Probes over time, end to end (docs/formulas.md §5, docs/architecture.md): the paper effects on small configs.

Each test trains one compiled group on CPU in well under a minute:

- [P] softmax CE in float32 without weight decay memorizes, the NLM cosine climbs towards 1
  after train accuracy reaches 100%, and Softmax Collapse rises from 0 afterwards; StableMax
  (float64) keeps SC at 0 although its logits would collapse a float32 softmax.
- [D] with 10% corrupted labels and no weight decay the per-neuron IPR histogram is bimodal
  (memorizing and generalizing neurons coexist); weight decay raises the mean IPR.
- [K] the α-net groks at small α while its NTK aligns with the target; at large α it stays
  lazy. The exact test loss from the sufficient statistics matches the empirical one; the
  NTK runs at its own coarser interval (NaN in between).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import assert_png, run_command

import grok
import probes
from grok.errors import ConfigError
from grok.plots import run as run_plots
from grok.store import RunDirError
from tasks.polynomial import QUADRATIC_SCALE

PROBE_NAMES_P = ("sc_fraction", "zero_terms", "nlm_cosine", "logit_norm")
PROBE_NAMES_K = ("ntk_alignment", "kernel_distance", "param_distance", "kernel_test_mse", "theory_test_loss")


# --------------------------------------------------------------------------- helpers
def first_index(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def is_bimodal(hist: np.ndarray, low_edge: float = 0.4, high_edge: float = 0.7, share: float = 0.2) -> bool:
    """A concrete bimodality test for an IPR histogram over [0, 1] with equal bins.

    Bimodal when at least `share` of the neurons lie below `low_edge` (memorizing: near the
    noise level 2/(p//2+1)) and at least `share` lie above `high_edge` (generalizing: nearly
    one Fourier mode), and between the two modes there is a gap: some bin holding at most a
    quarter of the smaller mode's count.
    """
    hist = np.asarray(hist, dtype=float)
    edges = np.linspace(0.0, 1.0, hist.size + 1)
    low = edges[1:] <= low_edge
    high = edges[:-1] >= high_edge
    total = hist.sum()
    if hist[low].sum() < share * total or hist[high].sum() < share * total:
        return False
    i_low = int(np.argmax(np.where(low, hist, -1)))
    i_high = int(np.argmax(np.where(high, hist, -1)))
    valley = hist[i_low + 1 : i_high].min()
    return bool(valley <= 0.25 * min(hist[i_low], hist[i_high]))


def test_is_bimodal_on_crafted_histograms():
    assert is_bimodal(np.r_[0, 9, 10, 6, 10, 8, 8, 12, 2, 1, 0, 3, 0, 1, 0, 2, 1, 5, 24, 26])
    assert not is_bimodal(np.r_[0, 0, 74, 116, 9, 1, np.zeros(14)])  # all neurons at the noise level
    assert not is_bimodal(np.r_[np.zeros(14), 10, 30, 60, 20, 8, 0])  # all generalizing
    assert not is_bimodal(np.r_[0, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 0])  # flat


def run_plot(argv: list[str]) -> int:
    return run_command(["plot", *argv])


def assert_plot_png(path) -> None:
    assert_png(path, min_bytes=20_000)  # several panels with lines, not an empty canvas


# --------------------------------------------------------------------------- [P] Softmax Collapse
P_SMALL = {
    "task.p": 23,
    "task.train_fraction": 0.4,
    "model.widths": [64, 64],
    "train.steps": 2400,
    "train.log_every": 40,
    "train.probes": ["collapse"],
}


@pytest.mark.slow
def test_softmax_collapse_rises_after_memorization_and_nlm_aligns():
    cfg = grok.preset("prieto-softmax-collapse-small").override(**P_SMALL)
    assert cfg.loss.kind == "softmax_ce" and cfg.loss.dtype == "float32" and cfg.optim.weight_decay == 0.0
    run = grok.train(cfg, seeds=(0, 1), progress=False)
    h = run.history
    n_intervals = cfg.n_intervals
    for name in PROBE_NAMES_P:
        assert h[name].shape == (2, n_intervals), name
    for m in range(2):
        acc, sc, nlm = h["train_acc"][m], h["sc_fraction"][m], h["nlm_cosine"][m]
        memorized = first_index(acc == 1.0)
        assert memorized is not None and memorized > 0
        assert h["test_acc"][m, -1] < 0.2  # no weight decay: memorization, no grokking
        # SC is 0 until (well after) train accuracy reaches 100%, then rises
        collapsed = first_index(sc > 0)
        assert collapsed is not None and collapsed > memorized + 5
        assert sc.max() > 0.2
        # NLM: the gradient is unrelated to θ at init; after memorization it aligns with θ
        assert abs(nlm[0]) < 0.2
        assert nlm[memorized:collapsed].max() > 0.7
        assert nlm[memorized:collapsed].max() > nlm[memorized] + 0.15  # it climbs after 100% train accuracy
        # the logits grow along the NLM direction; collapsed rows have zero loss in float32
        assert h["logit_norm"][m, collapsed] > 10 * h["logit_norm"][m, 0]
        np.testing.assert_array_equal(h["zero_terms"][m, :collapsed], 0.0)
    # per-layer norms add up to the total weight norm
    layers = [k for k in h if k.startswith("weight_norm/")]
    assert sorted(layers) == ["weight_norm/first/kernel", "weight_norm/hidden/0/kernel", "weight_norm/readout/kernel"]
    total = np.sqrt(sum(np.square(h[k].astype(np.float64)) for k in layers))
    np.testing.assert_allclose(total, h["weight_norm"], rtol=1e-5)


@pytest.mark.slow
def test_stablemax_keeps_sc_at_zero():
    over = P_SMALL | {"train.steps": 800}
    cfg = grok.preset("prieto-stablemax-small").override(**over)
    assert cfg.loss.kind == "stablemax_ce" and cfg.loss.dtype == "float64"
    run = grok.train(cfg, seeds=(0,), progress=False)
    h = run.history
    assert h["train_acc"][0, -1] == 1.0
    np.testing.assert_array_equal(h["sc_fraction"][0], 0.0)
    assert h["nlm_cosine"][0].max() > 0.6  # NLM happens here too; StableMax only keeps the gradient alive
    # not because the logits stayed small: the same logits would collapse a float32 softmax
    data = run.dataset(0)
    logits = run.model(0)(data.x_train, train=False)
    assert float(probes.sc_fraction(logits, "float32")) > 0.5
    assert h["logit_norm"][0, -1] > 100


# --------------------------------------------------------------------------- [D] memorizing neurons
D_SMALL = {"train.probes": ["neurons"]}  # the preset: add mod 41, 60% train, ξ = 0.1, N = 200, 500 steps


@pytest.fixture(scope="module")
def doshi_run():
    cfg = grok.preset("doshi-coexistence-small").override(**D_SMALL)
    return grok.train_members(cfg, [{"optim.weight_decay": 0.0}, {"optim.weight_decay": 5.0}], progress=False)


@pytest.mark.slow
def test_ipr_histogram_bimodal_and_weight_decay_raises_mean_ipr(doshi_run):
    h = doshi_run.history
    cfg = doshi_run.config
    n_int, width, bins = cfg.n_intervals, cfg.model.widths[0], cfg.train.ipr_histogram_bins
    assert h["ipr"].shape == (2, n_int, width)
    assert h["ipr_hist"].shape == (2, n_int, bins) and h["ipr_hist"].dtype == np.int32
    np.testing.assert_array_equal(h["ipr_hist"].sum(-1), width)
    np.testing.assert_allclose(h["ipr_mean"], h["ipr"].mean(-1), rtol=1e-5)
    # the histogram is the one of the per-neuron IPRs
    np.testing.assert_array_equal(h["ipr_hist"][0, -1], np.histogram(h["ipr"][0, -1], bins=bins, range=(0, 1))[0])

    no_wd, wd = 0, 1
    # without weight decay: coexistence [D] — fits the noisy labels and generalizes ...
    assert h["train_acc"][no_wd, -1] > 0.95 and h["test_acc"][no_wd, -1] > 0.9
    # ... with memorizing (low IPR) and generalizing (high IPR) neurons side by side
    assert not is_bimodal(h["ipr_hist"][no_wd, 0])  # at init every neuron is at the noise level
    assert is_bimodal(h["ipr_hist"][no_wd, -1])
    # weight decay removes the memorizing neurons: a higher mean IPR
    assert h["ipr_mean"][wd, -1] > h["ipr_mean"][no_wd, -1] + 0.1
    # the final per-neuron IPRs are those of the final weights
    u, v, w = grok.models.neuron_weights(doshi_run.model(no_wd))
    np.testing.assert_allclose(probes.neuron_ipr(u, v, w), h["ipr"][no_wd, -1], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_probes_survive_save_and_load_and_grok_plot_draws_them(doshi_run, tmp_path):
    doshi_run.save(tmp_path / "run")
    loaded = grok.load_run(tmp_path / "run")
    assert set(loaded.history) == set(doshi_run.history)
    for name in ("ipr", "ipr_mean", "ipr_hist"):
        np.testing.assert_array_equal(loaded.history[name], doshi_run.history[name])
        assert loaded.history[name].dtype == doshi_run.history[name].dtype

    assert run_plot([str(tmp_path / "run")]) == 0
    assert_plot_png(tmp_path / "run" / "plot.png")
    out = tmp_path / "fig" / "wd0.png"
    assert run_plot([str(tmp_path / "run"), "--out", str(out), "--steps", "0", "100", "500", "--member", "0"]) == 0
    assert_plot_png(out)

    with pytest.raises(ConfigError, match="--member"):
        run_plot([str(tmp_path / "run"), "--member", "2"])
    with pytest.raises(ConfigError, match="--steps"):
        run_plot([str(tmp_path / "run"), "--steps", "5000"])
    with pytest.raises(ConfigError, match="--out"):
        run_plot([str(tmp_path / "run"), "--out", str(tmp_path / "x.pdf")])
    with pytest.raises(RunDirError):
        run_plot([str(tmp_path / "missing")])


def test_grok_plot_draws_a_panel_for_each_unknown_scalar_metric(tmp_path, monkeypatch):
    # a probe registered outside grok leaves a metric the built-in panels cannot know
    cfg = grok.preset("prieto-perpgrad").override(
        **{"task.p": 23, "model.widths": [16, 16], "train.steps": 20, "train.log_every": 10}
    )
    run = grok.train(cfg, seeds=(0, 1), progress=False)
    n = len(run.history["step"])
    assert n == 3  # steps 0, 10, 20
    run.history["my_metric"] = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    run.history["my_vector"] = np.zeros((2, n, 4))  # not a scalar per interval: no panel
    run.history["my_nan"] = np.full((2, n), np.nan)  # nothing to draw: no panel
    run.save(tmp_path / "run")
    figures = []
    save = run_plots.save_figure
    monkeypatch.setattr(run_plots, "save_figure", lambda fig, path: figures.append(fig) or save(fig, path))

    assert run_plot([str(tmp_path / "run")]) == 0
    assert_plot_png(tmp_path / "run" / "plot.png")
    (fig,) = figures
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles.count("my_metric") == 1
    assert not {"my_vector", "my_nan", "step", "diverged", "train_acc", "test_loss"} & set(titles)
    (ax,) = [ax for ax in fig.axes if ax.get_title() == "my_metric"]
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), np.maximum(run.history["step"], 1))
    np.testing.assert_allclose(line.get_ydata(), [2.0, 3.0, 4.0])  # the mean over the members, with a band
    assert len(ax.collections) == 1


# --------------------------------------------------------------------------- [K] lazy → rich, NTK
K_SMALL = {
    "task.target": "quadratic",  # ½z², on which these sizes groks within 3000 steps (the preset's Fig. 3 target is z²)
    "task.dim": 20,
    "task.n_train": 100,
    "task.n_test": 2000,
    "model.widths": [100],
    "model.epsilon": 0.25,
    "optim.lr": 50.0,  # η₀·N with η₀ = 0.5
    "train.steps": 3000,
    "train.schedule": "linear",  # the NTK on an interval of its own needs a linear grid (the preset is log)
    "train.log_every": 20,
    "train.probes": ["ntk"],
    "train.ntk_every": 100,
    "train.ntk_subset": 100,  # the whole training set
}
ALPHAS = (0.5, 1.0, 2.0, 8.0)


@pytest.fixture(scope="module")
def kumar_run():
    cfg = grok.preset("kumar-fig3a").override(**K_SMALL)
    # four members: sharded over the four test devices
    return grok.train_members(cfg, [{"model.alpha": a} for a in ALPHAS], progress=False)


@pytest.mark.slow
def test_alpha_net_groks_at_small_alpha_while_the_ntk_aligns(kumar_run):
    h, steps = kumar_run.history, kumar_run.history["step"]
    on_ntk = steps % 100 == 0
    # the NTK has its own interval: values at its steps (step 0 included), NaN in between
    for name in PROBE_NAMES_K + ("kernel_test_mse_t",):
        assert h[name].shape == (len(ALPHAS), len(steps)), name
        assert np.isfinite(h[name][:, on_ntk]).all(), name
        assert np.isnan(h[name][:, ~on_ntk]).all(), name
    assert np.isfinite(h["test_loss"]).all()

    align = h["ntk_alignment"][:, on_ntk]
    gain = align[:, -1] - align[:, 0]
    assert (np.diff(align[:, -1]) < 0).all()  # the richer (smaller α), the more aligned
    np.testing.assert_allclose(align[:, 0], align[0, 0], rtol=1e-5)  # the NTK at init does not depend on α
    small = ALPHAS.index(1.0)
    assert gain[small] > 0.08 and gain[small] > 4 * gain[ALPHAS.index(8.0)]

    # grokking at α = 1 [K]: the test loss falls below 10% of its initial value well after the train loss
    train, test = h["train_loss"][small], h["test_loss"][small]
    fit, grokked = first_index(train < 0.1 * train[0]), first_index(test < 0.1 * test[0])
    assert fit is not None and grokked is not None and steps[grokked] >= 2 * steps[fit]
    # ... and the alignment keeps rising over that stretch
    a = h["ntk_alignment"][small]
    at = lambda i: a[np.flatnonzero(on_ntk & (steps <= steps[i]))[-1]]  # noqa: E731 (last NTK value by step i)
    assert a[0] < at(fit) < at(grokked) < a[-1]
    # the kernel of the lazy member barely moves
    assert h["kernel_distance"][-1, -1] < 0.1 * h["kernel_distance"][small, -1]
    # kernel regression with K₀ is a constant of the run (the lazy-limit predictor)
    k0_mse = h["kernel_test_mse"][:, on_ntk]
    np.testing.assert_allclose(k0_mse, k0_mse[:, :1] * np.ones_like(k0_mse), rtol=1e-5)


def test_fig3a_trains_on_z_squared_and_its_theory_loss_follows_the_test_loss():
    """`kumar-fig3a`'s target is z² (the authors' Fig. 3 code); the exact population loss of §5.3 with
    c = 1 agrees with the empirical test loss on 2000 points along a short run."""
    cfg = grok.preset("kumar-fig3a").override(**(K_SMALL | {"task.target": "square", "train.steps": 300}))
    assert grok.preset("kumar-fig3a").task.target == "square"
    run = grok.train(cfg, progress=False)
    data = run.dataset(0)
    z = data.x_test @ data.beta / np.sqrt(cfg.task.dim)
    np.testing.assert_allclose(data.y_test, np.square(z), rtol=1e-4, atol=1e-5)
    h = run.history
    on_ntk = np.isfinite(h["theory_test_loss"][0])
    ratio = h["theory_test_loss"][0, on_ntk] / h["test_loss"][0, on_ntk]
    assert on_ntk.sum() >= 3 and np.all(np.abs(ratio - 1) < 0.15), ratio


@pytest.mark.slow
def test_alpha_net_theory_loss_matches_empirical(kumar_run):
    h = kumar_run.history
    # on the 2000 test points (sampling error a few %), at every NTK step of every member
    on_ntk = np.isfinite(h["theory_test_loss"])
    ratio = h["theory_test_loss"][on_ntk] / h["test_loss"][on_ntk]
    assert np.all(np.abs(ratio - 1) < 0.15), ratio
    # and against a fresh Monte-Carlo estimate of the population loss of the final centered nets
    x = jax.random.normal(jax.random.key(123), (100_000, 20), jnp.float32)
    for alpha in (1.0, 8.0):
        i = ALPHAS.index(alpha)
        model, beta = kumar_run.model(i), kumar_run.dataset(i).beta
        y = QUADRATIC_SCALE[kumar_run.config.task.target] * jnp.square(x @ beta / np.sqrt(20))
        mc = float(jnp.mean(jnp.square(model(x) - y))) / alpha**2
        np.testing.assert_allclose(h["theory_test_loss"][i, -1], mc, rtol=0.03, err_msg=f"alpha={alpha}")


@pytest.mark.slow
def test_final_ntk_metrics_match_a_direct_computation(kumar_run):
    i = ALPHAS.index(1.0)
    model, data = kumar_run.model(i), kumar_run.dataset(i)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def apply(p, x):
        return nnx.merge(graphdef, p, rest)(x, train=False)

    x = data.x_train[:100]
    k = probes.empirical_ntk(apply, params, x)
    h = kumar_run.history
    np.testing.assert_allclose(h["ntk_alignment"][i, -1], probes.centered_alignment(k, data.y_train[:100]), rtol=1e-3)


@pytest.mark.slow
def test_grok_plot_draws_ntk_panels(kumar_run, tmp_path):
    kumar_run.save(tmp_path / "k")
    loaded = grok.load_run(tmp_path / "k")
    for name in PROBE_NAMES_K:
        np.testing.assert_array_equal(loaded.history[name], kumar_run.history[name])
    assert run_plot([str(tmp_path / "k"), "--member", "1", "--member", "3"]) == 0
    assert_plot_png(tmp_path / "k" / "plot.png")
    # the drawing functions accept one member or many, and say when a probe is absent
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3)
    run_plots.plot_ntk(axes[0], loaded, members=1)
    run_plots.plot_loss(axes[1], loaded)
    run_plots.plot_collapse(axes[2], loaded)
    assert any("no collapse probe" in t.get_text() for t in axes[2].texts)
    assert len(axes[1].get_lines()) >= 4 * len(ALPHAS) - 1  # train, test, theory, kernel regression per member
    plt.close(fig)
    with pytest.raises(IndexError):
        run_plots.plot_ntk(axes[0], loaded, members=7)


def test_neurons_probe_refused_for_the_alpha_net():
    before = grok.trace_count()
    with pytest.raises(ConfigError, match="neurons"):  # refused when the config is made, before compiling
        grok.preset("kumar-fig3a").override(
            **(K_SMALL | {"train.probes": ["neurons"], "train.ntk_every": None, "train.steps": 20})
        )
    assert grok.trace_count() == before


def test_a_long_figure_title_is_wrapped_to_the_figure_width(tmp_path):
    """A reproduction's claim and verdict wrap instead of widening the PNG (which squeezes the axes)."""
    import matplotlib.pyplot as plt

    from grok.plots.base import figure_title, save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot([0, 1], [0, 1])
    claim = "a claim of a paper " * 12
    text = figure_title(fig, f"{claim}\nshown by this run: " + "λ̂ 11.4 at step 0, " * 10).get_text()
    assert (
        len(text.splitlines()) > 2
        and text.replace("\n", " ").split() == f"{claim} shown by this run: {'λ̂ 11.4 at step 0, ' * 10}".split()
    )
    path = save_figure(fig, tmp_path / "f.png", dpi=100)
    width = int.from_bytes(path.read_bytes()[16:20], "big")  # the PNG's IHDR width
    assert width <= 6.5 * 100, width

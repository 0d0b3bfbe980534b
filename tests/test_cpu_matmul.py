"""`GROK_CPU_MATMUL=eigen` turns XLA:CPU's YNNPACK fusions off only where it safely can; the bench arms are right."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from grok import cpu_matmul
from grok.errors import GrokWarning

KNOWN = cpu_matmul.jaxlib_version().startswith(cpu_matmul.KNOWN_JAXLIBS)
PROBE = (
    "import grok, jax, jax.numpy as jnp; a = jnp.ones((512, 512)); "
    "print(grok.cpu_matmul.in_use(), '__ynn_fusion' in jax.jit(jnp.matmul).lower(a, a).compile().as_text())"
)


@pytest.fixture
def fresh(monkeypatch):
    """A process state in which nothing has been compiled, on a jaxlib known to have the flag."""
    monkeypatch.delenv("GROK_CPU_MATMUL", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/nowhere")
    monkeypatch.setattr(cpu_matmul, "_compiled_anything", lambda: False)
    monkeypatch.setattr(cpu_matmul, "jaxlib_version", lambda: "0.10.2")
    return monkeypatch


def test_the_default_leaves_xla_alone(fresh):
    assert cpu_matmul.use_chosen_matmul() == "xla"
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/nowhere"


def test_eigen_appends_the_flag_and_keeps_the_users_flags(fresh):
    fresh.setenv("GROK_CPU_MATMUL", "eigen")
    assert cpu_matmul.use_chosen_matmul() == "eigen"
    assert os.environ["XLA_FLAGS"].split() == ["--xla_dump_to=/tmp/nowhere", cpu_matmul.FLAG]


def test_a_flag_of_the_users_own_wins(fresh):
    fresh.setenv("GROK_CPU_MATMUL", "eigen")
    fresh.setenv("XLA_FLAGS", f"{cpu_matmul.FLAG}LIBRARY_FUSION_TYPE_REDUCE")
    assert cpu_matmul.use_chosen_matmul() == "LIBRARY_FUSION_TYPE_REDUCE"
    assert os.environ["XLA_FLAGS"] == f"{cpu_matmul.FLAG}LIBRARY_FUSION_TYPE_REDUCE"


@pytest.mark.parametrize("why", ["unknown jaxlib", "already compiled"])
def test_eigen_is_not_set_where_xla_would_abort_or_ignore_it(fresh, why):
    fresh.setenv("GROK_CPU_MATMUL", "eigen")
    if why == "unknown jaxlib":  # XLA stops the process on a flag it does not know
        fresh.setattr(cpu_matmul, "jaxlib_version", lambda: "0.12.0")
    else:  # XLA has read its flags already
        fresh.setattr(cpu_matmul, "_compiled_anything", lambda: True)
    with pytest.warns(GrokWarning, match="0.12.0" if why == "unknown jaxlib" else "before `import grok`"):
        assert cpu_matmul.use_chosen_matmul() == "xla"
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/nowhere"


def test_a_bad_choice_is_a_clear_error(fresh):
    fresh.setenv("GROK_CPU_MATMUL", "fast")
    with pytest.raises(ValueError, match="GROK_CPU_MATMUL='fast': expected one of xla, eigen"):
        cpu_matmul.use_chosen_matmul()


@pytest.mark.skipif(not KNOWN, reason="a jaxlib not known to have the flag")
@pytest.mark.parametrize(("choice", "ynn"), [("eigen", False), ("xla", True)])
def test_import_grok_applies_the_choice_to_compiled_programs(choice, ynn):
    clean = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=clean | {"JAX_PLATFORMS": "cpu", "GROK_CPU_MATMUL": choice},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [choice, str(ynn)]


@pytest.mark.skipif(not KNOWN or cpu_matmul.in_use() != "xla", reason="needs XLA's default products")
def test_the_benchmarks_arms_compile_eigen_and_xlas_default():
    from benchmarks.xla_cpu_arms import compiled_arms

    def f(a, b):
        return jnp.sum(jnp.maximum(a @ b, 0.0), axis=1)

    a = jnp.ones((256, 256))
    arms = compiled_arms(jax.jit(f), (a, a))
    assert "__ynn_fusion" not in arms["eigen"].as_text()
    assert arms["ynnpack"].as_text() == jax.jit(f).lower(a, a).compile().as_text()
    assert float(arms["eigen"](a, a)[0]) == float(arms["ynnpack"](a, a)[0]) == 256.0 * 256.0


def test_the_benchmark_compiles_one_program_where_the_option_is_unknown(monkeypatch):
    from benchmarks import xla_cpu_arms

    monkeypatch.setattr(cpu_matmul, "jaxlib_version", lambda: "0.12.0")  # XLA would refuse the option
    a = jnp.ones((8, 8))
    arms = xla_cpu_arms.compiled_arms(jax.jit(jnp.matmul), (a, a))
    assert list(arms) == ["default"] and float(arms["default"](a, a)[0, 0]) == 8.0


def test_the_process_compiles_as_asked():
    """Run here and, with GROK_CPU_MATMUL=eigen, in the subprocess below: `import grok` took effect."""
    assert cpu_matmul.in_use() == (os.environ.get("GROK_CPU_MATMUL") or "xla")


BIT_FOR_BIT = (
    "tests/test_cpu_matmul.py::test_the_process_compiles_as_asked",
    "tests/test_reliability.py::test_a_member_trained_alone_in_a_group_or_sharded_is_bit_identical[prieto-perpgrad-small]",
    "tests/test_probe_history.py::test_post_hoc_probes_equal_the_values_logged_during_training",
)


@pytest.mark.slow
@pytest.mark.skipif(not KNOWN, reason="a jaxlib not known to have the flag")
def test_the_bit_for_bit_guarantees_hold_with_eigen():
    """A member alone = in company = sharded, and post-hoc probes = logged ones, with every program on Eigen."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTEST_XDIST_WORKER")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *BIT_FOR_BIT],
        cwd=root,
        env=clean | {"GROK_CPU_MATMUL": "eigen"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "3 passed" in out.stdout, out.stdout[-2000:]

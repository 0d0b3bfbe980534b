"""`import grok` gives JAX one CPU device per core, unless told otherwise."""

import os
import subprocess
import sys

import pytest

from grok.cpu_devices import usable_cores

PROBE = "import grok, jax; print(jax.device_count())"


def devices_after_import(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "GROK_CPU_DEVICES")}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env=clean | {"JAX_PLATFORMS": "cpu"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_one_device_per_core_by_default():
    out = devices_after_import()
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) == usable_cores()


def test_the_count_can_be_chosen_and_an_explicit_xla_flag_wins():
    assert devices_after_import(GROK_CPU_DEVICES="3").stdout.split()[-1] == "3"
    flag = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "GROK_CPU_DEVICES": "3"}
    assert devices_after_import(**flag).stdout.split()[-1] == "2"


@pytest.mark.parametrize("value", ["many", "0"])
def test_a_bad_count_is_a_clear_error(value):
    out = devices_after_import(GROK_CPU_DEVICES=value)
    assert out.returncode != 0
    assert f"GROK_CPU_DEVICES={value!r}" in out.stderr

"""Light imports stay light: the simulator's worker processes, the commands and the deploy loop
import these modules many times, and torch or scipy cost about 2 s each time."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "modules",
    ["sim", "real", "decomposer.task", "policies.chunks", "sim.eval_cli", "real.deploy_cli"],
)
def test_modules_import_without_torch_or_scipy(modules):
    code = (
        f"import sys, {modules}; "
        "heavy = sorted(m for m in ('torch', 'scipy') if m in sys.modules); print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"import {modules} pulled in {done.stdout.strip()}"


def test_lazy_exports_resolve_and_refuse_unknown_names():
    import decomposer
    import policies

    assert decomposer.decompose.__module__ == "decomposer.uvd"
    assert policies.Policy.__module__ == "policies.policy"
    assert "load_backbone" in dir(decomposer)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        decomposer.nope  # noqa: B018

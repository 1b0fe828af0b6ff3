"""The pure/compiled switch (``RA_COMPILED``, :mod:`schemas.compiled`) and, with ``--mypyc``, the compiled build.

Every test works in a temporary copy of the packages, so a build in the working tree (``python -m tools.compile
build``) neither helps nor disturbs them. Without ``--mypyc`` nothing is compiled: the switch is checked
against a fake extension module. With it, the reducer is built with mypyc in the copy and must produce the
recorded rows digest (tests/unit/test_reducer_digest.py) exactly as pure Python does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from schemas.compiled import ENV, GROUP, MODULES
from tests.unit.test_reducer_digest import RECORDED

REPO = Path(__file__).resolve().parents[2]
EXT = sysconfig.get_config_var("EXT_SUFFIX")
VARIANT = "from schemas.compiled import variant; print(variant())"


def _copy(tmp: Path, *names: str) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", ".cache", "rust-oracle")
    for name in names:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp / name, ignore=ignore)
        else:
            shutil.copy2(source, tmp / name)
    return tmp


def _run(cwd: Path, code: str, setting: str | None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != ENV}
    if setting is not None:
        env[ENV] = setting
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def tree_with_a_broken_build(tmp_path: Path) -> Path:
    """The packages with a garbage extension module next to a compiled module's source and no manifest."""
    tree = _copy(tmp_path, "schemas", "reducer")
    (tree / "reducer" / f"core{EXT}").write_bytes(b"not an extension module")
    return tree


def test_pure_python_is_forced_by_ra_compiled_0_even_with_an_extension_module_present(
    tree_with_a_broken_build: Path,
) -> None:
    done = _run(tree_with_a_broken_build, VARIANT, "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pure"
    assert "stale" not in done.stderr  # forced pure: the build is not even looked at


def test_a_stale_or_partial_build_is_never_used_and_says_so(tree_with_a_broken_build: Path) -> None:
    done = _run(tree_with_a_broken_build, VARIANT, None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pure"
    assert "RuntimeWarning" in done.stderr and "stale" in done.stderr


def test_ra_compiled_1_refuses_to_run_without_a_fresh_build(tree_with_a_broken_build: Path, tmp_path: Path) -> None:
    clean = _copy(tmp_path / "clean", "schemas", "reducer")
    for tree, state in ((tree_with_a_broken_build, "stale"), (clean, "absent")):
        done = _run(tree, VARIANT, "1")
        assert done.returncode != 0
        assert f"{ENV}=1 but the compiled build is {state}" in done.stderr


def test_without_a_build_everything_is_pure_python(tmp_path: Path) -> None:
    tree = _copy(tmp_path, "schemas", "reducer")
    done = _run(tree, VARIANT, None)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "pure", "")


def test_without_a_build_the_switch_costs_no_start_up_imports(tmp_path: Path) -> None:
    # Every process that imports schemas pays for the switch: without a build it only stats files. hashlib
    # (the sources digest), json (the manifest) and importlib.abc (about 15 ms: tempfile, shutil, ...) are
    # loaded only when a build is there to check. (The switch imported all three before 7e5456d.)
    tree = _copy(tmp_path, "schemas", "reducer")
    code = "import sys, schemas; print(sorted({'hashlib', 'json', 'importlib.abc'} & set(sys.modules)))"
    done = _run(tree, code, None)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "[]", "")


def test_an_unknown_setting_is_an_import_error(tmp_path: Path) -> None:
    done = _run(_copy(tmp_path, "schemas", "reducer"), VARIANT, "yes")
    assert done.returncode != 0 and f"{ENV}='yes'" in done.stderr


@pytest.mark.mypyc
def test_the_compiled_reducer_writes_the_recorded_rows_byte_for_byte(tmp_path: Path) -> None:
    tree = _copy(tmp_path, "schemas", "reducer", "services", "tools", "tests", "pyproject.toml")
    build = subprocess.run(
        [sys.executable, "-m", "tools.compile", "build", "-j", "2"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert (tree / f"{GROUP}.json").exists()
    for module in MODULES:
        assert (tree / (module.replace(".", "/") + EXT)).exists(), module
    digests = {}
    for setting, expected in (("1", "compiled"), ("0", "pure")):
        assert _run(tree, VARIANT, setting).stdout.strip() == expected
        code = (
            "from tests.support.digest import workload_digest; from schemas.compiled import variant; "
            "print(variant(), workload_digest(threads=40, copies=2))"
        )
        done = _run(tree, code, setting, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        built, digest = done.stdout.split()
        assert built == expected
        digests[expected] = digest
    assert digests == {"compiled": RECORDED[40, 2], "pure": RECORDED[40, 2]}
    # clean leaves no built file behind, and the tree runs pure Python again
    subprocess.run([sys.executable, "-m", "tools.compile", "clean"], cwd=tree, check=True, capture_output=True)
    assert not list(tree.glob(f"**/*{EXT}"))
    assert _run(tree, VARIANT, None).stdout.strip() == "pure"


def test_bench_b1_reports_the_build_it_measured(tmp_path: Path) -> None:
    """``bench --variants`` runs B1 per build in child processes and names the build in every row; the pure
    build needs no compiled modules, so this runs everywhere (the compiled one is measured by hand)."""
    out = tmp_path / "b1.json"
    command = [sys.executable, "-m", "tools.bench", "--smoke", "--cases", "B1", "--variants", "pure"]
    command += ["--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["variant"] in ("pure", "compiled")  # this process's build (a fresh in-place build counts)
    assert document["variants_b1"] == ["pure"]
    (case,) = document["cases"]
    assert case["error"] is None
    assert case["series"]["variants"] == ["pure"]
    assert case["series"]["rows_digest"] == case["series"]["rows_digests"]["pure"]
    assert all(row["name"].endswith("[pure]") for row in case["rows"])
    assert len(case["rows"][0]["runs"]) == 3

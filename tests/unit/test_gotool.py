"""tools.gotool: the pinned Go command installer, with a stand-in ``go`` on PATH (the real build is exercised by
scripts/test and tests/unit/test_helm_chart.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tools import gotool


def fake_go(bin_dir: Path, script: str) -> None:
    """Put a ``go`` on PATH that runs ``script`` (sh) with the real arguments in "$@"."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    go = bin_dir / "go"
    go.write_text(f"#!/bin/sh\n{script}\n")
    go.chmod(go.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def path_with_fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "fakebin"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_install_builds_the_pinned_version_once_then_reuses_the_cache(path_with_fake_go: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    fake_go(path_with_fake_go, f'echo "$@" >> {log}; printf "#!/bin/sh\\necho built\\n" > "$GOBIN/helm"')
    home = tmp_path / "cache"
    assert gotool.installed("helm", home) is None
    first = gotool.install("helm", home)
    assert first.built and first.path.is_file()
    assert first.path == home / "bin" / f"helm-{gotool.TOOLS['helm'].version}" / "helm"
    assert log.read_text().split() == ["install", f"helm.sh/helm/v3/cmd/helm@{gotool.TOOLS['helm'].version}"]
    second = gotool.install("helm", home)
    assert not second.built and second.path == first.path
    assert len(log.read_text().splitlines()) == 1, "a cached tool must not be rebuilt"
    assert gotool.installed("helm", home) == first.path


def test_a_failed_build_raises_with_go_output_and_leaves_no_binary(path_with_fake_go: Path, tmp_path: Path) -> None:
    fake_go(path_with_fake_go, 'echo "dial tcp: lookup proxy.golang.org: no such host" >&2; exit 1')
    home = tmp_path / "cache"
    with pytest.raises(gotool.GoToolError, match="no such host") as error:
        gotool.install("helm", home)
    assert "Go module proxy" in str(error.value)
    assert gotool.installed("helm", home) is None
    assert not list((home / "bin").glob("*/.build-*")), "the scratch directory is removed"


def test_missing_go_and_unknown_tools_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(gotool.GoToolError, match="`go` was not found on PATH"):
        gotool.install("helm", tmp_path / "cache")
    with pytest.raises(gotool.GoToolError, match="unknown tool 'kubectl'; known: helm"):
        gotool.install("kubectl", tmp_path / "cache")


def test_cli_path_fails_until_installed_then_prints_the_binary(
    path_with_fake_go: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "cache"
    assert gotool.main(["--home", str(home), "path", "helm"]) == 1
    assert "python -m tools.gotool install helm" in capsys.readouterr().err
    fake_go(path_with_fake_go, 'printf "" > "$GOBIN/helm"')
    assert gotool.main(["--home", str(home), "install", "helm"]) == 0
    installed_path = capsys.readouterr().out.strip().splitlines()[-1]
    assert gotool.main(["--home", str(home), "path", "helm"]) == 0
    assert capsys.readouterr().out.strip() == installed_path

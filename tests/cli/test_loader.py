"""Loading an expert file: no ``__main__`` run, exactly one expert, clear errors."""

from __future__ import annotations

import pytest

from metaexpert.cli.errors import ExpertLoadError
from metaexpert.cli.loader import load_expert
from tests.cli.fakes import FakeExpert


def test_load_with_main_block_does_not_run_it(write_expert_file, tmp_path):
    marker = tmp_path / "main-ran"
    path = write_expert_file(f"""
        expert = FakeExpert()
        if __name__ == "__main__":
            open({str(marker)!r}, "w").write("ran")
    """)
    loaded = load_expert(path, expert_type=FakeExpert)
    assert isinstance(loaded.expert, FakeExpert)
    assert loaded.variable == "expert"
    assert loaded.module.__name__ != "__main__"
    assert loaded.name == "fake_expert"
    assert not marker.exists()


def test_load_with_alias_of_same_instance_finds_one_expert(write_expert_file):
    path = write_expert_file("""
        expert = FakeExpert()
        alias = expert
    """)
    assert isinstance(load_expert(path, expert_type=FakeExpert).expert, FakeExpert)


def test_load_with_no_instance_raises_clear_error(write_expert_file):
    path = write_expert_file("x = 1\n")
    with pytest.raises(ExpertLoadError, match="defines no FakeExpert instance at module level"):
        load_expert(path, expert_type=FakeExpert)


def test_load_with_two_instances_raises_clear_error(write_expert_file):
    path = write_expert_file("""
        first = FakeExpert()
        second = FakeExpert()
    """)
    with pytest.raises(ExpertLoadError, match=r"defines 2 FakeExpert instances \(first, second\)"):
        load_expert(path, expert_type=FakeExpert)


def test_load_with_syntax_error_names_the_line(write_expert_file):
    path = write_expert_file("expert = FakeExpert(\n\ndef broken(:\n")
    with pytest.raises(ExpertLoadError, match=r"fake_expert.py line \d+: syntax error"):
        load_expert(path, expert_type=FakeExpert)


def test_load_with_failing_import_names_exception_and_line(write_expert_file):
    path = write_expert_file("""
        expert = FakeExpert()
        raise RuntimeError("bad setting")
    """)
    expected = r"importing fake_expert.py failed at line 4: RuntimeError: bad setting"
    with pytest.raises(ExpertLoadError, match=expected):
        load_expert(path, expert_type=FakeExpert)


def test_load_with_missing_file_raises_clear_error(tmp_path):
    with pytest.raises(ExpertLoadError, match="expert file not found"):
        load_expert(tmp_path / "absent.py", expert_type=FakeExpert)


def test_load_with_non_python_file_raises_clear_error(tmp_path):
    path = tmp_path / "expert.txt"
    path.write_text("expert = 1")
    with pytest.raises(ExpertLoadError, match="must be a Python file"):
        load_expert(path, expert_type=FakeExpert)


def test_load_with_sibling_helper_module_imports_it(write_expert_file, tmp_path):
    (tmp_path / "cli_sibling_helper_x7.py").write_text("PERIOD = 21\n")
    path = write_expert_file("""
        from cli_sibling_helper_x7 import PERIOD
        expert = FakeExpert()
        expert.period = PERIOD
    """)
    assert load_expert(path, expert_type=FakeExpert).expert.period == 21


# ---------------------------------------------------------------- one loader for every entry point
def _cli(path):
    return load_expert(path).expert


def _optimizer(path):
    from metaexpert.backtest.optimization import load_expert_file

    return load_expert_file(path)


def _supervisor(path):
    from metaexpert.supervisor import worker

    return worker.run({"file": str(path), "trade_mode": "backtest", "run": {}})


def _prefect_task(path):
    from tasks.trading import load_expert_file

    return load_expert_file(str(path))


ENTRY_POINTS = {
    "cli": _cli,
    "optimizer": _optimizer,
    "supervisor": _supervisor,
    "prefect": _prefect_task,
}
BROKEN = {
    "syntax": (
        "from metaexpert import MetaExpert\nexpert = MetaExpert(\n",
        r"broken_\w+\.py line \d+: syntax error",
    ),
    "two": (
        "from metaexpert import MetaExpert\na = MetaExpert()\nb = MetaExpert()\n",
        r"broken_\w+\.py defines 2 MetaExpert instances \(a, b\)",
    ),
    "none": ("x = 1\n", r"broken_\w+\.py defines no MetaExpert instance"),
    "raises": ("raise KeyError('oops')\n", r"importing broken_\w+\.py failed at line 1: KeyError"),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("problem", sorted(BROKEN))
def test_load_with_broken_file_from_every_entry_point_raises_same_configuration_error(
    entry, problem, tmp_path
):
    from metaexpert.core.errors import ConfigurationError

    source, message = BROKEN[problem]
    path = tmp_path / f"broken_{problem}_{entry}.py"
    path.write_text(source)
    with pytest.raises(ConfigurationError, match=message):
        ENTRY_POINTS[entry](path)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_load_with_missing_file_from_every_entry_point_names_the_file(entry, tmp_path):
    from metaexpert.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"expert file not found: .*absent_expert\.py"):
        ENTRY_POINTS[entry](tmp_path / "absent_expert.py")

"""Service files: the systemd units and the launchd plist rendered for this install, their
install/uninstall, the shipped copies in systemd/, and `guardian service` end to end."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guardian.cli import service
from guardian.config.settings import GuardianConfig, load_config
from guardian.daemon import unitfiles
from guardian.daemon.unitfiles import ServiceSpec, render, spec_for
from guardian.errors import GuardianError

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, extra: str = "") -> GuardianConfig:
    path = tmp_path / "my conf%" / "config.yaml"  # a blank and a % to quote in a unit file
    path.parent.mkdir(parents=True)
    path.write_text(f"repos:\n  - path: ../repos/app\n{extra}", encoding="utf-8")
    return load_config(path)


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway $HOME (and XDG_CONFIG_HOME below it) for installing into."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    return home


def test_system_unit_has_the_service_directives(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    text = render(spec_for(cfg, scope="system", platform="linux"))
    d = _directives(text)
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "60",
        "Restart": "on-failure",
        "User": "repo-guardian",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "read-only",
        "PrivateTmp": "yes",
        "StateDirectory": "repo-guardian",
        "Environment": "GUARDIAN_HOME=%S/repo-guardian",
        "KillMode": "mixed",
        "OOMPolicy": "continue",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "WantedBy": "multi-user.target",
    }
    assert {key: d.get(key) for key in expected} == {k: [v] for k, v in expected.items()}
    assert int(d["TimeoutStopSec"][0]) > cfg.daemon.grace_seconds
    assert "MemoryDenyWriteExecute" not in d and "#MemoryMax=8G" in text
    exe, rest = d["ExecStart"][0].split(" ", 1)
    assert Path(exe).is_absolute() and os.access(exe, os.X_OK)
    quoted = str(cfg.source).replace("%", "%%")
    assert rest == f'run --config "{quoted}"'


def test_user_unit_runs_as_you_on_your_state_dir(tmp_path: Path, guardian_home: Path) -> None:
    cfg = _config(tmp_path)
    d = _directives(render(spec_for(cfg, scope="user", platform="linux")))
    assert "User" not in d and "StateDirectory" not in d and "ProtectSystem" not in d
    assert d["Environment"] == [f"GUARDIAN_HOME={guardian_home.resolve()}"]
    assert d["Type"] == ["notify"] and d["WatchdogSec"] == ["60"]
    assert d["KillMode"] == ["mixed"] and d["NoNewPrivileges"] == ["yes"]
    assert d["WantedBy"] == ["default.target"]


def test_stop_timeout_follows_the_grace_period(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "daemon:\n  grace_seconds: 300.5\n")
    d = _directives(render(spec_for(cfg, scope="user", platform="linux")))
    assert d["TimeoutStopSec"] == ["331"]
    plist = plistlib.loads(render(spec_for(cfg, scope="user", platform="darwin")).encode())
    assert plist["ExitTimeOut"] == 331


def test_mirrors_and_an_outside_models_dir_are_writable(tmp_path: Path) -> None:
    extra = (
        "  - path: /srv/mirror\n    remote: origin\n    fetch_minutes: 5\n"
        "promote:\n  models_dir: /srv/models dir\n"
    )
    cfg = _config(tmp_path, extra)
    d = _directives(render(spec_for(cfg, scope="system", platform="linux")))
    assert d["ReadWritePaths"] == ['"-/srv/models dir"', "-/srv/mirror"]
    assert "ReadWritePaths" not in _directives(
        render(spec_for(cfg, scope="user", platform="linux"))
    )


def test_unit_words_are_escaped() -> None:
    word = unitfiles._unit_word
    assert word("/usr/bin/guardian") == "/usr/bin/guardian"
    assert word("/a b/c") == '"/a b/c"'
    assert word("50%$x") == "50%%$$x"
    assert word("GUARDIAN_HOME=/x/$y", dollars=False) == "GUARDIAN_HOME=/x/$y"
    assert word('say "hi"\\') == '"say \\"hi\\"\\\\"'
    with pytest.raises(GuardianError):
        word("/a\nExecStartPre=/bin/sh")


def test_bad_user_names_and_platforms_are_refused(tmp_path: Path) -> None:
    cfg = GuardianConfig()
    with pytest.raises(GuardianError, match="--user-name"):
        spec_for(cfg, scope="system", platform="linux", user_name="bad name")
    with pytest.raises(GuardianError, match="--system"):
        spec_for(cfg, scope="user", platform="linux", user_name="alice")
    assert spec_for(cfg, scope="system", platform="linux", user_name="ci_bot").user_name == "ci_bot"
    assert unitfiles.detect_platform("linux") == "linux"
    assert unitfiles.detect_platform("darwin") == "darwin"
    with pytest.raises(GuardianError, match="--platform"):
        unitfiles.detect_platform("windows")


def test_guardian_command_is_the_console_script_else_python_m(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (exe,) = unitfiles.guardian_command()
    assert exe == str(Path(os.path.abspath(sys.executable)).parent / "guardian")
    lone = tmp_path / "bin" / "python3"
    lone.parent.mkdir()
    lone.symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(lone))
    assert unitfiles.guardian_command() == (str(lone), "-m", "guardian")  # not resolved


def test_plist_parses_and_has_the_launchd_keys(tmp_path: Path, home: Path) -> None:
    cfg = _config(tmp_path)
    plist = plistlib.loads(render(spec_for(cfg, scope="user", platform="darwin")).encode())
    exe, *args = plist["ProgramArguments"]
    assert Path(exe).is_absolute() and os.access(exe, os.X_OK)
    assert args == ["run", "--config", str(cfg.source)]
    assert plist["Label"] == "com.repo-guardian"
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False, "Crashed": True}
    log = str(home / "Library" / "Logs" / "repo-guardian.log")
    assert plist["StandardOutPath"] == plist["StandardErrorPath"] == log
    assert plist["EnvironmentVariables"]["GUARDIAN_HOME"] == str(cfg.home)
    assert plist["EnvironmentVariables"]["PATH"].split(":")[0] == str(Path(exe).parent)
    assert "UserName" not in plist
    system = spec_for(cfg, scope="system", platform="darwin", user_name="ci")
    daemon = plistlib.loads(render(system).encode())
    assert daemon["UserName"] == "ci"
    assert daemon["StandardOutPath"] == "/Library/Logs/repo-guardian.log"
    assert unitfiles.target_path(system) == Path("/Library/LaunchDaemons/com.repo-guardian.plist")


def _verify(unit: Path, *, user: bool, runtime: Path) -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed on this machine (no systemd)")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    args = [tool, *(["--user"] if user else []), "verify", "--man=no", str(unit)]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    output = proc.stdout + proc.stderr
    if "Failed to initialize manager" in output:
        pytest.skip(f"systemd-analyze cannot start a test manager here: {output.strip()}")
    assert proc.returncode == 0, output
    return output


@pytest.mark.parametrize("scope", ["system", "user"])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, scope: str) -> None:
    extra = "  - path: /srv/mirror\n    remote: origin\npromote:\n  models_dir: /srv/my models\n"
    cfg = _config(tmp_path, extra)
    unit = tmp_path / "units" / "repo-guardian.service"
    unit.parent.mkdir()
    unit.write_text(render(spec_for(cfg, scope=scope, platform="linux")))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    output = _verify(unit, user=scope == "user", runtime=runtime)
    # verify exits 0 on unknown keys and bad values, so its warnings are read too
    assert unit.name not in output, output


def test_install_user_writes_atomically_and_never_clobbers(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_for(_config(tmp_path), scope="user", platform="linux")
    done = unitfiles.install(spec)
    target = home / "xdg" / "systemd" / "user" / "repo-guardian.service"
    assert done == unitfiles.Installed(target, changed=True)
    assert target.read_text() == render(spec)
    inode = target.stat().st_ino
    assert unitfiles.install(spec).changed is False and target.stat().st_ino == inode

    target.write_text("[Service]\nExecStart=/bin/mine\n")
    with pytest.raises(GuardianError, match="--force"):
        unitfiles.install(spec)
    assert target.read_text() == "[Service]\nExecStart=/bin/mine\n"

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr("guardian.core.fsutil.os.replace", crash)
        with pytest.raises(OSError, match="disk full"):
            unitfiles.install(spec, force=True)
    assert target.read_text() == "[Service]\nExecStart=/bin/mine\n"
    assert unitfiles.install(spec, force=True).changed is True
    assert target.read_text() == render(spec)
    assert sorted(p.name for p in target.parent.iterdir()) == ["repo-guardian.service"]


def test_install_paths_follow_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    cfg = GuardianConfig()
    user = spec_for(cfg, scope="user", platform="linux")
    assert unitfiles.target_path(user) == home / ".config/systemd/user/repo-guardian.service"
    agent = spec_for(cfg, scope="user", platform="darwin")
    assert unitfiles.install(agent).path == home / "Library/LaunchAgents/com.repo-guardian.plist"
    system = spec_for(cfg, scope="system", platform="linux")
    assert unitfiles.target_path(system) == Path("/etc/systemd/system/repo-guardian.service")
    assert system.config == unitfiles.SYSTEM_CONFIG  # no config found: the system one


def test_uninstall_removes_only_ours_and_not_while_enabled(tmp_path: Path, home: Path) -> None:
    spec = spec_for(GuardianConfig(), scope="user", platform="linux")
    assert unitfiles.uninstall(spec) is None
    target = unitfiles.install(spec).path
    wants = target.parent / "default.target.wants" / target.name
    wants.parent.mkdir()
    wants.symlink_to(target)
    with pytest.raises(GuardianError, match="systemctl --user disable --now"):
        unitfiles.uninstall(spec)
    wants.unlink()
    assert unitfiles.uninstall(spec) == target and not target.exists()
    target.write_text("[Service]\nExecStart=/bin/mine\n")
    with pytest.raises(GuardianError, match="not written by"):
        unitfiles.uninstall(spec)
    assert unitfiles.uninstall(spec, force=True) == target and not target.exists()


def test_next_steps_and_notes(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    user = spec_for(cfg, scope="user", platform="linux")
    steps = "\n".join(service.next_steps(user, Path("/x")))
    assert "systemctl --user daemon-reload && systemctl --user enable --now" in steps
    assert "loginctl enable-linger $USER" in steps
    system = spec_for(cfg, scope="system", platform="linux", user_name="no-such-user-here")
    steps = "\n".join(service.next_steps(system, Path("/x")))
    assert "useradd --system" in steps and "no-such-user-here" in steps
    assert f"safe.directory {(tmp_path / 'repos' / 'app').resolve()}" in steps
    agent = spec_for(cfg, scope="user", platform="darwin")
    plist = Path("/u/Library/LaunchAgents/com.repo-guardian.plist")
    assert f"launchctl bootstrap gui/$(id -u) {plist}" in service.next_steps(agent, plist)
    missing = ServiceSpec(platform="linux", scope="user", command=("/g",), config=tmp_path / "n")
    assert any("does not exist" in note for note in service.notes(missing))


def test_shipped_files_are_the_rendered_ones() -> None:
    for name, text in unitfiles.shipped_files().items():
        shipped = (ROOT / "systemd" / name).read_text(encoding="utf-8")
        assert shipped == text, (
            f"systemd/{name} is stale: python -c 'from pathlib import Path; from "
            "guardian.daemon.unitfiles import shipped_files; "
            '[Path("systemd", n).write_text(t) for n, t in shipped_files().items()]\''
        )
    d = _directives(unitfiles.shipped_files()["repo-guardian.service"])
    assert d["ExecStart"] == ["/usr/bin/guardian run --config /etc/repo-guardian/config.yaml"]


def _guardian(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    return subprocess.run(
        [sys.executable, "-m", "guardian", "service", *args],
        capture_output=True,
        text=True,
        cwd=home,
        env=env,
        timeout=120,
    )


def test_cli_print_shows_the_plist_and_writes_nothing(home: Path) -> None:
    proc = _guardian(home, "install", "--print", "--platform", "darwin")
    assert proc.returncode == 0, proc.stderr
    plist = plistlib.loads(proc.stdout.encode())
    assert plist["ProgramArguments"][1:] == ["run"]  # no config found in the empty home
    assert list(home.iterdir()) == []


def test_cli_install_and_uninstall(home: Path) -> None:
    proc = _guardian(home, "install", "--platform", "linux")
    assert proc.returncode == 0, proc.stderr
    target = home / ".config" / "systemd" / "user" / "repo-guardian.service"
    assert f"wrote: {target}" in proc.stdout
    assert "systemctl --user daemon-reload" in proc.stdout
    assert "no config.yaml found" in proc.stderr
    again = _guardian(home, "install", "--platform", "linux")
    assert f"unchanged: {target}" in again.stdout
    bad = _guardian(home, "install", "--platform", "linux", "--user-name", "bob")
    assert bad.returncode == 1 and "error: --user-name is for --system" in bad.stderr
    gone = _guardian(home, "uninstall", "--platform", "linux")
    assert gone.returncode == 0, gone.stderr
    assert f"removed: {target}" in gone.stdout and not target.exists()

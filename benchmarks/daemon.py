"""The daemon's reaction time and idle footprint: commit -> run-start latency, idle RSS and CPU.

Usage: python benchmarks/daemon.py [--commits N] [--idle-seconds 60] [--poll-seconds 2] [--keep]

Each scenario gets a fresh temp git repo (a few small Python files), a fresh GUARDIAN_HOME and a
config whose playbook is the `mine` skill alone (examples/demo-skills.yaml's definition; no
evaluate step, so a run records no gate decision and nothing is promoted), so runs start and end
in about a second. `guardian run --config FILE` runs as a subprocess, as tests/daemon do.

  A. hooks: `watch: poll` every 30 s, so only the post-commit hook can start a run quickly;
  B. no hooks: `watch: auto` (inotify, default 1 s debounce, target the default 10 s poll
     interval), then `watch: poll` every --poll-seconds (target that interval);
  C. idle: a daemon on defaults that has decided and run one job (so its decision imports are
     loaded), sampled for --idle-seconds: RSS and PSS, peak RSS, CPU time and share of one core.

Latency is from just after `git commit` returns (time.time()) to the spawn time of the worker
that runs the commit's job: `since` in `<home>/daemon.json` (time.time() right after Popen, in
the daemon; runs.started_at only has whole seconds). Commits are N, each after the last run
settled plus a random pause (uniform over one poll interval in poll mode, so the commit lands
at a random phase); a worker counts for a commit only if its run recorded that commit's sha
(any other is reported as a stray run). p95 is interpolated (statistics.quantiles,
inclusive) over the N samples. CPU is utime+stime of /proc/PID/stat (every thread of the
process); idle writes are deltas of /proc/PID/io (syscw, wchar, write_bytes). The machine may
be shared: the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from _common import commit_tree, git

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
KB_PER_MB = 1024.0  # /proc/PID/status and smaps_rollup sizes are in kB

FILES = {
    "shop/__init__.py": '"""A tiny shop."""\n',
    "shop/money.py": (
        '"""Money helpers."""\n\n\ndef add_tax(amount: float, rate: float = 0.2) -> float:\n'
        '    """Amount with tax."""\n    return round(amount * (1 + rate), 2)\n\n\n'
        "def split(amount: float, ways: int) -> list[float]:\n"
        '    """Split evenly."""\n    return [round(amount / ways, 2)] * ways\n'
    ),
    "shop/cart.py": (
        '"""A cart."""\n\nfrom shop.money import add_tax\n\n\nclass Cart:\n'
        '    """Items and prices."""\n\n    def __init__(self) -> None:\n'
        "        self.items: dict[str, float] = {}\n\n"
        "    def add(self, name: str, price: float) -> None:\n"
        "        self.items[name] = price\n\n    def total(self) -> float:\n"
        "        return add_tax(sum(self.items.values()))\n"
    ),
}


def load() -> str:
    """The 1/5/15-minute load average, for the record."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_setup(work: Path, daemon: dict[str, Any]) -> tuple[Path, Path, Path]:
    """A repo, a state dir and a config.yaml (+ skills.yaml) under `work`: (repo, home, config)."""
    repo, home = work / "repo", work / "home"
    for rel, text in FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    commit_tree(repo, "initial")
    demo = yaml.safe_load((ROOT / "examples" / "demo-skills.yaml").read_text())
    skills = {
        "version": 1,
        "skills": {"mine": demo["skills"]["mine"]},
        "playbooks": {
            "bench": {
                "description": "mine only: a run that starts and ends fast",
                "skills": ["mine"],
                "trigger": {"events": ["commit"], "min_changed_lines": 1},
            }
        },
    }
    (work / "skills.yaml").write_text(yaml.safe_dump(skills, sort_keys=False))
    config = {
        "skills_file": "skills.yaml",
        "default_playbook": "bench",
        "log": {"level": "info", "format": "json"},
        "promote": {"target": "none"},
        "daemon": daemon,
        "repos": [{"path": str(repo), "playbook": "bench"}],
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return repo, home, work / "config.yaml"


def guardian(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one guardian CLI command against `home`; raises with its output on failure."""
    env = {**os.environ, "GUARDIAN_HOME": str(home)}
    cmd = [sys.executable, "-m", "guardian", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done


class Daemon:
    """A `guardian run` subprocess, its state dir and its log."""

    def __init__(self, config: Path, home: Path) -> None:
        self.config, self.home, self.log = config, home, home.parent / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup = 0.0

    def start(self) -> None:
        env = {**os.environ, "GUARDIAN_HOME": str(self.home)}
        env.pop("NOTIFY_SOCKET", None)
        t0 = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "guardian", "run", "--config", str(self.config)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self.status().get("state") == "running", "the daemon to run", 60, self)
        self.startup = time.monotonic() - t0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self) -> dict[str, Any]:
        if self.proc is not None and self.proc.poll() is not None:
            raise SystemExit(f"guardian run exited ({self.proc.returncode}):\n{self.tail()}")
        try:
            doc = json.loads((self.home / "daemon.json").read_text())
        except (OSError, ValueError):
            return {}
        return doc if self.proc and doc.get("pid") == self.proc.pid else {}

    def tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM, wait for the exit (SIGKILL after 60 s); the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                return None
        return proc.returncode


def wait_for(cond: Any, what: str, seconds: float, daemon: Daemon, step: float = 0.02) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(step)
    raise SystemExit(f"timed out after {seconds:.0f} s waiting for {what}\n{daemon.tail()}")


def job(home: Path, job_id: str) -> dict[str, Any] | None:
    from guardian.store.state import StateStore

    with StateStore(home) as store:
        return store.jobs.get(job_id)


def commit(repo: Path, n: int) -> str:
    """Add a function to shop/money.py and commit it; the new HEAD sha."""
    with (repo / "shop" / "money.py").open("a") as fh:
        fh.write(f"\n\ndef fee_{n}(amount: float) -> float:\n    return amount + {n}\n")
    git(repo, "commit", "-qam", f"fee {n}")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    return head.stdout.strip()


def run_sha(home: Path, run_id: str | None) -> str | None:
    from guardian.store.state import StateStore

    if not run_id:
        return None
    with StateStore(home) as store:
        run = store.runs.get(run_id)
    return str(run["commit_sha"]) if run else None


def counts(home: Path) -> tuple[int, int]:
    """(runs recorded, jobs skipped by the trigger policy) in a state dir."""
    from guardian.store.state import StateStore

    with StateStore(home) as store:
        runs = len(store.runs.recent(limit=10_000))
        jobs = store.jobs.listed(limit=10_000)
    return runs, sum(1 for j in jobs if str(j["payload"].get("note", "")).startswith("skipped"))


def settle(daemon: Daemon, job_id: str) -> dict[str, Any]:
    """Wait for a job to finish and its worker to be reaped; the job row (raises if failed)."""

    def settled() -> dict[str, Any] | None:
        row = job(daemon.home, job_id)
        idle = not any(w["job"] == job_id for w in daemon.status().get("workers") or [])
        return row if row and row["status"] in ("done", "failed") and idle else None

    row = wait_for(settled, f"job {job_id} to finish", 120, daemon, 0.05)
    if row["status"] != "done":
        raise SystemExit(f"job {job_id} failed: {row['error']}\n{daemon.tail()}")
    return row


def new_worker(daemon: Daemon, seen: frozenset[str], after: float) -> dict[str, Any] | None:
    """A worker in daemon.json of a job not in `seen`, spawned at or after `after`."""
    for w in daemon.status().get("workers") or []:
        if w["job"] not in seen and float(w["since"]) >= after:
            return dict(w)
    return None


def latencies(
    daemon: Daemon, repo: Path, commits: int, pause: tuple[float, float], timeout: float
) -> tuple[list[float], list[str], int]:
    """(commit -> worker-spawn seconds, trigger source of each, stray runs) over N commits.

    The worker counted for a commit is the first one spawned after `git commit` started whose
    run recorded that commit's sha; any other (a watcher re-running an old HEAD) is a stray."""
    rng = random.Random(0)
    seen: set[str] = set()
    out, sources, strays = [], [], 0
    for n in range(1, commits + 1):
        time.sleep(rng.uniform(*pause))
        seen |= {w["job"] for w in daemon.status().get("workers") or []}
        before = time.time()
        sha = commit(repo, n)  # the hook has run; its `guardian trigger` is in the background
        t_commit = time.time()
        while True:
            spawned = partial(new_worker, daemon, frozenset(seen), before)
            w = wait_for(spawned, f"a worker for commit {n}", timeout, daemon)
            seen.add(w["job"])
            row = settle(daemon, w["job"])
            if run_sha(daemon.home, row["run_id"]) == sha:
                break
            strays += 1
        out.append(float(w["since"]) - t_commit)
        first = str(row["payload"]["reasons"][0]).split(" ", 1)[-1]
        sources.append(first.split(":", 1)[0])
    return out, sources, strays


def stats(xs: list[float]) -> dict[str, float]:
    p95 = statistics.quantiles(xs, n=20, method="inclusive")[18] if len(xs) > 1 else xs[0]
    return {"median": statistics.median(xs), "p95": p95, "max": max(xs), "min": min(xs)}


def scenario(
    name: str, work: Path, daemon_cfg: dict[str, Any], args: argparse.Namespace, hooks: bool
) -> dict[str, Any]:
    """One latency scenario: set up, start the daemon, commit N times, stop."""
    repo, home, config = make_setup(work, daemon_cfg)
    guardian(home, "validate", "--config", str(config))
    if hooks:
        guardian(home, "hooks", "install", str(repo), "--config", str(config))
    d = Daemon(config, home)
    print(f"\n[{name}] daemon {daemon_cfg}, hooks {'on' if hooks else 'off'}; load {load()}")
    debounce = float(daemon_cfg.get("debounce_seconds", 1.0))
    poll = float(daemon_cfg.get("poll_seconds", 10.0))
    try:
        d.start()
        mode = str(d.status().get("watch_mode"))
        time.sleep(debounce + 1.0)  # past the watcher's start-up re-check of every repo
        pause = (0.0, poll) if mode == "poll" and not hooks else (0.3, 1.0)
        timeout = poll * 2 + debounce + 30
        lat, sources, strays = latencies(d, repo, args.commits, pause, timeout)
    finally:
        code = d.stop()
    runs, skipped = counts(home)
    trigger_s, hook_s = [], []
    if hooks:  # what the hook's `guardian trigger` costs alone (daemon stopped: queued only)
        for _ in range(3):
            t0 = time.perf_counter()
            guardian(home, "trigger", str(repo), "--reason", "bench-probe", "--config", str(config))
            trigger_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()  # the hook itself: it leaves its trigger in the background
            subprocess.run([str(repo / ".git" / "hooks" / "post-commit")], cwd=repo, check=True)
            hook_s.append(time.perf_counter() - t0)
    expected = "hook" if hooks else mode
    by_source = {s: sources.count(s) for s in sorted(set(sources))}
    print(f"  watch mode {mode}; started in {d.startup:.2f} s; exit code {code}")
    st = stats(lat)
    print("  latency s: " + " ".join(f"{x:.2f}" for x in lat))
    print("  min {min:.2f} median {median:.2f} p95 {p95:.2f} max {max:.2f} s".format(**st))
    print(f"  first trigger of each counted job: {by_source} (expected {expected})")
    print(
        f"  {runs} runs recorded for {args.commits} commits ({strays} not of the new commit);"
        f" {skipped} jobs skipped by the policy"
    )
    if trigger_s:
        print(f"  `guardian trigger` alone, wall: median {statistics.median(trigger_s):.2f} s")
        print(f"  post-commit hook returns in: max {max(hook_s) * 1000:.0f} ms (target < 100 ms)")
    return {
        "lat": st,
        "pure": set(sources) == {expected},
        "runs": runs,
        "trigger": statistics.median(trigger_s) if trigger_s else None,
        "load": load(),
    }


def proc_sample(pid: int) -> dict[str, float]:
    """RSS, peak RSS, PSS (MB), CPU seconds (all threads), threads and child count of `pid`."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # field 3 onward; utime, stime are 14, 15
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    pss = 0.0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / KB_PER_MB
    except OSError:
        pass
    io = {}
    try:
        io = {
            k: int(v)
            for k, v in (ln.split(": ") for ln in Path(f"/proc/{pid}/io").read_text().splitlines())
        }
    except OSError:
        pass
    children = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += len((task / "children").read_text().split())
        except OSError:
            pass
    return {
        "rss": int(status["VmRSS"].split()[0]) / KB_PER_MB,
        "hwm": int(status["VmHWM"].split()[0]) / KB_PER_MB,
        "pss": pss,
        "cpu": cpu,
        "threads": int(status["Threads"]),
        "children": children,
        "syscw": io.get("syscw", 0),
        "wchar": io.get("wchar", 0),
        "disk": io.get("write_bytes", 0),
    }


def idle(work: Path, seconds: float) -> dict[str, Any]:
    """A daemon on default watch settings, after one run, sampled for `seconds` while idle."""
    repo, home, config = make_setup(work, {})
    guardian(home, "validate", "--config", str(config))
    d = Daemon(config, home)
    print(f"\n[idle] daemon on defaults (watch auto, poll 10 s); load {load()}")
    try:
        d.start()
        fresh = proc_sample(d.pid)
        commit(repo, 1)
        wait_for(lambda: d.status().get("workers"), "the first run to start", 60, d)
        wait_for(lambda: not d.status().get("workers"), "the first run to settle", 120, d, 0.05)
        time.sleep(3.0)  # let the turn after the reap pass
        doc = d.status()
        first, t0 = proc_sample(d.pid), time.monotonic()
        samples, busy = [first], 0
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            samples.append(proc_sample(d.pid))
            busy += bool(d.status().get("workers"))
        wall = time.monotonic() - t0
    finally:
        code = d.stop()
    last = samples[-1]
    cpu = last["cpu"] - first["cpu"]
    out = {
        "fresh_rss": fresh["rss"],
        "rss": statistics.median(s["rss"] for s in samples),
        "rss_max": max(s["rss"] for s in samples),
        "pss": statistics.median(s["pss"] for s in samples),
        "hwm": last["hwm"],
        "cpu": cpu,
        "pct": 100.0 * cpu / wall,
        "wall": wall,
        "threads": last["threads"],
        "children": max(s["children"] for s in samples),
        "syscw": (last["syscw"] - first["syscw"]) * 60.0 / wall,
        "wchar": (last["wchar"] - first["wchar"]) * 60.0 / wall / 1024.0,
        "disk": (last["disk"] - first["disk"]) * 60.0 / wall / 1024.0,
        "busy": busy,
        "torch": doc.get("torch_loaded"),
        "mode": doc.get("watch_mode"),
        "load": load(),
    }
    print(
        f"  watch mode {out['mode']}; started in {d.startup:.2f} s; exit code {code}\n"
        f"  RSS just after start {fresh['rss']:.1f} MB; after one run, idle: RSS "
        f"{out['rss']:.1f} MB (max {out['rss_max']:.1f}), PSS {out['pss']:.1f} MB, "
        f"peak (VmHWM) {out['hwm']:.1f} MB\n"
        f"  CPU {cpu:.2f} s over {wall:.0f} s = {out['pct']:.2f}% of one core; "
        f"{out['threads']} threads; child processes seen "
        f"{out['children']}; samples with a worker {busy}; torch_loaded {out['torch']}\n"
        f"  writes per minute: {out['syscw']:.0f} syscalls, {out['wchar']:.0f} KiB written, "
        f"{out['disk']:.0f} KiB sent to the block device (/proc/PID/io write_bytes)"
    )
    return out


def main() -> None:
    """Run the three scenarios and print a summary table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=10, help="commits per latency scenario")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--poll-seconds", type=float, default=2.0, help="poll interval in B (poll)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (and daemon logs)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="guardian-bench-daemon-"))
    print(f"work: {work}\ncores: {os.cpu_count()}; load {load()}; commits {args.commits}")
    try:
        hook = scenario("A hooks", work / "a", {"watch": "poll", "poll_seconds": 30}, args, True)
        auto = scenario("B inotify", work / "b", {"watch": "auto"}, args, False)
        poll = args.poll_seconds
        polled = scenario(
            "B poll", work / "c", {"watch": "poll", "poll_seconds": poll}, args, False
        )
        rest = idle(work / "d", args.idle_seconds)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def row(name: str, value: str, target: str, ok: bool | None, load_now: str) -> None:
        verdict = "-" if ok is None else ("ok" if ok else "MISSED")
        print(f"{name:<34} {value:<26} {target:<12} {verdict:<7} {load_now}")

    print(f"\n{'figure':<34} {'value':<26} {'target':<12} {'verdict':<7} load 1/5/15 min")
    for label, res, target in (
        ("commit->run, hook (watch poll 30s)", hook, 2.0),
        ("commit->run, inotify (debounce 1s)", auto, 10.0),
        (f"commit->run, poll every {poll:g}s", polled, poll),
    ):
        lat = res["lat"]
        value = f"median {lat['median']:.2f} p95 {lat['p95']:.2f} s" + ("" if res["pure"] else "*")
        row(label, value, f"< {target:g} s", lat["p95"] < target, res["load"])
        row("  runs recorded", f"{res['runs']} for {args.commits} commits", "", None, "")
    row("  hook: `guardian trigger` alone", f"median {hook['trigger']:.2f} s", "", None, "")
    row("idle RSS (median over window)", f"{rest['rss']:.1f} MB", "< 80 MB", rest["rss"] < 80, "")
    row("idle PSS / peak RSS (VmHWM)", f"{rest['pss']:.1f} / {rest['hwm']:.1f} MB", "", None, "")
    cpu = f"{rest['cpu']:.2f} s = {rest['pct']:.2f}% core"
    row(f"idle CPU over {rest['wall']:.0f} s", cpu, "", None, rest["load"])
    io = f"{rest['syscw']:.0f} calls, {rest['wchar']:.0f}/{rest['disk']:.0f} KiB"
    row("idle writes/min (syscall/disk KiB)", io, "", None, "")
    row("torch_loaded (daemon.json)", str(rest["torch"]), "False", rest["torch"] is False, "")
    if not all(r["pure"] for r in (hook, auto, polled)):
        print("* some counted runs were first triggered by another source: see above")
    print(
        "latency = worker spawn time (daemon.json workers[].since) - time just after `git commit`"
        " returned; p95 interpolated over the samples; CPU = utime+stime, all threads"
    )


if __name__ == "__main__":
    main()

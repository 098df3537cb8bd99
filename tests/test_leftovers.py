"""A test run leaves nothing behind: no process (the shop, its node SDK sender, the
browser) and no session CA folder (it holds a private key), whether it ends normally,
by Ctrl-C at start-up, mid-test or teardown, or by SIGKILL.

Real processes: a small test project runs in a pytest subprocess; every process it
starts inherits a tag in its environment, which is how leftovers are counted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from processes import still_running, tagged

from pytest_pixelcheck.events import EventStore
from pytest_pixelcheck.proxy import CA_FOLDER_PREFIX, PixelProxy, clean_stale_ca_folders

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
TAG_VARIABLE = "PIXELCHECK_LEFTOVER_TAG"

CONFTEST = '''
import faulthandler
import os
import signal
import time
from pathlib import Path

# the outer test asks for every thread's stack with SIGUSR1 when the run hangs (into a
# file: pytest's capture holds this process's stderr)
STACKS = open(os.environ["LEFTOVER_READY"] + ".stacks", "w")
faulthandler.register(signal.SIGUSR1, file=STACKS, all_threads=True)

import pytest
from example_site import SiteProcess

MOMENT = os.environ["LEFTOVER_MOMENT"]


def reached(stage):
    """Tell the outer test this stage is reached, then wait there to be interrupted."""
    if MOMENT == stage:
        Path(os.environ["LEFTOVER_READY"]).write_text(stage)
        time.sleep(120)


@pytest.fixture(scope="session")
def shop(pixelcheck_sink):
    # the node SDK client: the shop starts a node process of its own
    with SiteProcess(pixelcheck_sink.url, capi_client="facebook-nodejs-business-sdk") as site:
        reached("start-up")
        yield site
        reached("teardown")
'''

TEST_FILE = '''
from conftest import reached
from example_site.journey import checkout


def test_checkout(pixelcheck, pixelcheck_page, shop):
    checkout(pixelcheck_page, shop.url)
    pixelcheck.wait_for("Purchase", "server", timeout=20)
    reached("mid-test")
'''


# pytest with Ctrl-C's default handling, as a terminal starts it: a process started in
# the background by a shell without job control (a CI step, `cmd &`) inherits SIGINT
# ignored, and so would the run and every child of it
RUN_AS_IN_A_TERMINAL = ("import signal, sys, pytest; "
                        "signal.signal(signal.SIGINT, signal.default_int_handler); "
                        "sys.exit(pytest.main(sys.argv[1:]))")


def _tagged_processes(tag: str) -> list[str]:
    return tagged(TAG_VARIABLE, tag)


def _leftovers(tag: str, settle: float = 15.0) -> list[str]:
    return still_running(TAG_VARIABLE, tag, settle)


def _ca_folders(tempdir: Path) -> list[str]:
    return sorted(p.name for p in tempdir.iterdir() if p.name.startswith(CA_FOLDER_PREFIX))


@pytest.fixture
def short_tempdir():
    """The run's temp dir: short, since Chromium refuses a socket path over 107 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="pxl-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _start_run(tmp_path: Path, tempdir: Path,
               moment: str) -> tuple[subprocess.Popen[bytes], str, Path, Path]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_shop.py").write_text(TEST_FILE)
    ready = tmp_path / "ready"
    tag = uuid.uuid4().hex
    env = {**os.environ, TAG_VARIABLE: tag, "LEFTOVER_MOMENT": moment,
           "LEFTOVER_READY": str(ready), "TMPDIR": str(tempdir),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    # its own session, like a run in a terminal: Ctrl-C goes to its whole group
    run = subprocess.Popen(
        [sys.executable, "-c", RUN_AS_IN_A_TERMINAL, "-p", "no:cacheprovider",
         "-p", "no:randomly", "-q", "test_shop.py"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 90
    while not ready.exists():
        if run.poll() is not None or time.monotonic() > deadline:
            run.kill()
            out = run.communicate()[0].decode("utf-8", "replace")
            pytest.fail(f"the run never reached {moment!r}:\n{out[-3000:]}")
        time.sleep(0.1)
    time.sleep(0.3)  # inside the wait now
    return run, tag, tempdir, project


def _finished_output(run: subprocess.Popen[bytes], tag: str, timeout: float,
                     stacks: Path) -> str:
    """The run's output once it exits; if it hangs, fail with what each of its
    processes was doing (state and kernel wait channel) and the output so far."""
    try:
        return run.communicate(timeout=timeout)[0].decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        states = []
        for process in _tagged_processes(tag):
            pid = process.split()[0]
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                wchan = Path(f"/proc/{pid}/wchan").read_text()
            except OSError:
                continue
            states.append(f"{process} state {stat[stat.rindex(')') + 2]} wchan {wchan}")
        os.kill(run.pid, signal.SIGUSR1)  # pytest's threads' stacks, into its output
        time.sleep(1)
        os.killpg(run.pid, signal.SIGKILL)
        out = run.communicate()[0].decode("utf-8", "replace")
        dumped = stacks.read_text() if stacks.exists() else "(none)"
        pytest.fail(f"the run did not exit within {timeout:.0f} s of Ctrl-C; its processes:\n"
                    + "\n".join(states) + f"\npytest's threads:\n{dumped[-6000:]}"
                    + f"\noutput:\n{out[-4000:]}")


@pytest.mark.parametrize("moment", ["start-up", "mid-test", "teardown"])
def test_ctrl_c_leaves_no_process_and_no_ca_folder(tmp_path, short_tempdir, moment):
    run, tag, tempdir, _ = _start_run(tmp_path, short_tempdir, moment)
    assert _tagged_processes(tag), "the run should have children while it runs"
    os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out = _finished_output(run, tag, 60, tmp_path / "ready.stacks")
    assert "KeyboardInterrupt" in out, out[-3000:]
    assert _leftovers(tag) == [], out[-3000:]
    assert _ca_folders(tempdir) == [], out[-3000:]


def test_sigkill_of_the_run_takes_its_children_and_the_next_start_cleans_up(
        tmp_path, short_tempdir):
    run, tag, tempdir, _ = _start_run(tmp_path, short_tempdir, "mid-test")
    children = _tagged_processes(tag)
    assert any(" node" in p for p in children), children  # the shop's SDK sender runs
    os.kill(run.pid, signal.SIGKILL)  # only pytest: its children must follow by themselves
    run.communicate(timeout=30)
    assert _leftovers(tag) == []
    # a killed run cannot remove its CA folder; the next start does
    assert len(_ca_folders(tempdir)) == 1
    assert clean_stale_ca_folders(tempdir) == 1
    assert _ca_folders(tempdir) == []


def test_ca_folder_is_removed_at_stop(tmp_path):
    # in a process of its own: mitmproxy's context is process-global, and a second proxy
    # started here would take it from the session's proxy (its browser then distrusts
    # every certificate the session's proxy makes)
    env = {**os.environ, "TMPDIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-c", "import os; from pytest_pixelcheck.proxy import PixelProxy;"
         "from pytest_pixelcheck.events import EventStore;"
         "p = PixelProxy(EventStore()).start(); print(p.confdir, os.getpid());"
         "print(p.ca_cert_path.is_file()); p.stop(); print(p.confdir.exists())"],
        env=env, capture_output=True, text=True, timeout=120, check=True)
    folder_line, cert_there, exists_after = run.stdout.splitlines()[-3:]
    folder, pid = folder_line.rsplit(" ", 1)
    assert Path(folder).name.startswith(f"{CA_FOLDER_PREFIX}{pid}-")
    assert cert_there == "True"
    assert exists_after == "False"
    assert _ca_folders(tmp_path) == []


def test_a_live_runs_ca_folder_is_not_cleaned_by_another(tmp_path):
    """A concurrent run (an xdist worker) keeps its folder while it lives."""
    env = {**os.environ, "TMPDIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    holder = subprocess.Popen(
        [sys.executable, "-c", "from pytest_pixelcheck.proxy import PixelProxy;"
         "from pytest_pixelcheck.events import EventStore;"
         "p = PixelProxy(EventStore()); print(p.confdir, flush=True); input()"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        folder = Path(holder.stdout.readline().strip())
        assert folder.is_dir()
        assert clean_stale_ca_folders(tmp_path) == 0
        assert folder.is_dir()
    finally:
        holder.kill()
        holder.wait()
    assert clean_stale_ca_folders(tmp_path) == 1
    assert not folder.exists()


def test_unlocked_folders_are_removed_only_when_their_run_is_gone(tmp_path):
    """Killed between mkdtemp and the lock: the pid in the name tells; a folder of an
    older version (no pid) is left until it is a day old."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead = tmp_path / f"{CA_FOLDER_PREFIX}{finished.stdout.strip()}-abc"
    alive = tmp_path / f"{CA_FOLDER_PREFIX}{os.getpid()}-abc"
    legacy = tmp_path / f"{CA_FOLDER_PREFIX}k3j_x9"
    for folder in (dead, alive, legacy):
        folder.mkdir()
    assert clean_stale_ca_folders(tmp_path) == 1
    assert not dead.exists() and alive.exists() and legacy.exists()
    day_ago = time.time() - 25 * 3600
    os.utime(legacy, (day_ago, day_ago))
    assert clean_stale_ca_folders(tmp_path) == 1
    assert not legacy.exists()


def test_a_second_proxy_in_the_process_is_refused_with_a_reason(pixelcheck_proxy):
    """It once started, took mitmproxy's process-global context, and every later browser
    test of that xdist worker failed with proxy-not-trusted."""
    from pytest_pixelcheck.proxy import ProxyError

    second = PixelProxy(EventStore())
    with pytest.raises(ProxyError, match="already runs in this process") as refused:
        second.start()
    assert pixelcheck_proxy.url in str(refused.value)

"""What the run tests share: main.py as a subprocess or in this process, the files a run leaves, and
the ``out`` fixture (a test module imports it; no conftest here, whose module name would shadow
tests/conftest.py's)."""
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTING = "CartPole-v1_0"
OFFLINE = ["--env", "CartPole-v1", "--max_timesteps", 1200, "--eval_freq", 400, "--checkpoint_freq", 100,
           "--eval_episodes", 2, "--batch_size", 32]


def main_py(*args, **popen):
    command = [sys.executable, os.path.join(ROOT, "main.py"), *map(str, args)]
    if popen:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def ok(*args):
    result = main_py(*args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def files_under(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, names in os.walk(path) for f in names)


def run_main(args, capsys, stdout=None):
    """``main.main(args)`` in this process: (exit code, its stderr lines); its stdout goes to the list
    ``stdout`` where one is given."""
    sys.path.insert(0, ROOT)
    import main
    code = main.main([str(a) for a in args])
    captured = capsys.readouterr()
    if stdout is not None:
        stdout.append(captured.out)
    return code, [line for line in captured.err.strip().splitlines() if line]


def checkpoint_of(out, algo):
    root = out / "checkpoints" / f"{algo}_{SETTING}"
    steps = [p for p in root.iterdir() if p.name.startswith("step_")] if root.exists() else []  # no .tmp folders
    return sorted(steps, key=lambda p: int(p.name.rsplit("_", 1)[1]))


def wait_for_checkpoint(process, root, timeout=120):
    start = time.time()
    while not (os.path.isdir(root) and any(d.startswith("step_") for d in os.listdir(root))):
        assert process.poll() is None, process.communicate()
        assert time.time() - start < timeout, "no checkpoint appeared"
        time.sleep(0.02)


BUILT = {}  # the CartPole out_dir, once built (fixtures imported into several modules are built per module)


def cartpole(tmp_path_factory):
    """A tiny CartPole out_dir with a behavioral model and a 3000-transition buffer, built once per session."""
    if BUILT:
        return BUILT["cartpole"]
    out = tmp_path_factory.mktemp("cartpole")
    flags = ["--env", "CartPole-v1", "--out_dir", out, "--max_timesteps", 3000, "--start_timesteps", 200,
             "--eval_freq", 1500, "--eval_episodes", 2, "--batch_size", 32]
    ok("--train_behavioral", *flags)
    ok("--generate_buffer", *flags)
    BUILT["cartpole"] = out
    return out


@pytest.fixture
def out(tmp_path_factory, tmp_path):
    """A private copy of the CartPole out_dir."""
    target = tmp_path / "out"
    shutil.copytree(cartpole(tmp_path_factory), target)
    return target

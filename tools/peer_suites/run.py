# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Run the test suites that Pyro and PyTorch wrote for their own distribution
classes against pyro_expfam's classes, and compare with the baseline.

Each suite is run twice in a scratch directory (never inside the project):
once as it is (their classes: the baseline) and once with pyro_expfam's
classes substituted for theirs before any test module is imported (see
``peer_substitute.py``).  A test counts as a failure of ours only where it
fails with our classes and passes with theirs.

The peer test code is fetched at run time and never committed:

- Pyro: ``tests/distributions`` (the files in ``PYRO_FILES``), ``tests/common.py``,
  ``tests/conftest.py`` and ``setup.cfg`` (its pytest configuration, with
  ``filterwarnings = error``), from a local git directory (``--pyro-git-dir``)
  or from GitHub's archive of the tag matching the installed Pyro;
- torch: ``test/distributions/test_distributions.py`` from a file
  (``--torch-test-file``), a local git directory (``--torch-git-dir``) or
  GitHub at the tag matching the installed torch.  What it imports from
  ``torch.testing._internal`` ships with torch; it also needs ``expecttest``
  and ``hypothesis`` (pure Python).

Usage::

    python tools/peer_suites/run.py --suite pyro --pyro-git-dir /path/to/pyro/.git
    python tools/peer_suites/run.py --suite torch --torch-test-file test_distributions.py

The counts are merged into ``tools/peer_suites/results.json`` (one entry per
suite); the JUnit XML and logs stay in the scratch directory.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = HERE / "results.json"

#: Pyro's test files that exercise the families pyro_expfam wraps (the other files of
#: tests/distributions test distributions we do not replace: Stable, LKJ, coalescent, ...).
PYRO_FILES = (
    "test_binomial.py",
    "test_categorical.py",
    "test_conjugate.py",
    "test_conjugate_update.py",
    "test_distributions.py",
    "test_extended.py",
    "test_grouped_normal_normal.py",
    "test_hmm.py",
    "test_ig.py",
    "test_independent.py",
    "test_kl.py",
    "test_log_normal_negative_binomial.py",
    "test_mask.py",
    "test_mixture.py",
    "test_mvn.py",
    "test_nanmasked.py",
    "test_one_hot_categorical.py",
    "test_pickle.py",
    "test_reshape.py",
    "test_shapes.py",
    "test_tensor_type.py",
    "test_torch_patch.py",
    "test_util.py",
    "test_von_mises.py",
    "test_zero_inflated.py",
)
PYRO_SUPPORT = (
    "setup.cfg",
    "tests/__init__.py",
    "tests/common.py",
    "tests/conftest.py",
    "tests/distributions",
    "tests/ops",  # helpers imported by test_hmm.py
)
TORCH_TEST = "test/distributions/test_distributions.py"


def _git(git_dir: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True, **kw)


def _pick_ref(git_dir: str, wanted: list[str]) -> str:
    tags = set(_git(git_dir, "tag", text=True).stdout.split())
    for ref in wanted:
        if ref in tags:
            return ref
    return "HEAD"


def _describe(git_dir: str, ref: str) -> str:
    return _git(git_dir, "log", "-1", "--format=%H %cs", ref, text=True).stdout.strip()


def fetch_pyro(dest: pathlib.Path, git_dir: str | None, ref: str | None) -> str:
    """Extract Pyro's test files into ``dest``; return a description of the source."""
    import pyro

    if git_dir:
        ref = ref or _pick_ref(git_dir, [pyro.__version__, f"v{pyro.__version__}"])
        tar = _git(git_dir, "archive", "--format=tar", ref, "--", *PYRO_SUPPORT).stdout
        tarfile.open(fileobj=io.BytesIO(tar)).extractall(dest, filter="data")
        return f"git {git_dir} at {ref} ({_describe(git_dir, ref)})"
    ref = ref or pyro.__version__
    url = f"https://github.com/pyro-ppl/pyro/archive/{ref}.tar.gz"
    with urllib.request.urlopen(url, timeout=120) as f:
        data = f.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            path = m.name.split("/", 1)[-1]
            if any(path == p or path.startswith(p + "/") for p in PYRO_SUPPORT):
                m.name = path
                tf.extract(m, dest, filter="data")
    return f"{url}"


def fetch_torch(dest: pathlib.Path, test_file: str | None, git_dir: str | None, ref: str | None) -> str:
    """Put torch's ``test_distributions.py`` into ``dest``; return a description of the source."""
    import torch

    version = torch.__version__.split("+")[0]
    target = dest / "test_distributions.py"
    if test_file:
        shutil.copy(test_file, target)
        source = f"file {test_file}"
    elif git_dir:
        ref = ref or _pick_ref(git_dir, [f"v{version}"])
        target.write_bytes(_git(git_dir, "show", f"{ref}:{TORCH_TEST}").stdout)
        source = f"git {git_dir} at {ref} ({_describe(git_dir, ref)})"
    else:
        ref = ref or f"v{version}"
        url = f"https://raw.githubusercontent.com/pytorch/pytorch/{ref}/{TORCH_TEST}"
        with urllib.request.urlopen(url, timeout=120) as f:
            target.write_bytes(f.read())
        source = url
    # an empty configuration, so that no enclosing project's pytest options apply
    (dest / "pytest.ini").write_text("[pytest]\n")
    return source


def build_patched_torch(dest: pathlib.Path) -> pathlib.Path:
    """A copy of the installed ``torch/distributions`` under ``dest`` with ``upstream/patches`` applied."""
    import torch

    shutil.rmtree(dest, ignore_errors=True)
    installed = pathlib.Path(torch.distributions.__file__).parent
    shutil.copytree(installed, dest / "torch" / "distributions", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "test" / "distributions").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    for patch in sorted((ROOT / "upstream" / "patches").glob("*.patch")):
        subprocess.run(["git", "apply", str(patch)], cwd=dest, check=True)
    return dest


def run_pytest(cwd: pathlib.Path, args: list[str], suite: str, classes: str, xml: pathlib.Path) -> float:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PEER_SUITE=suite, PEER_CLASSES=classes)
    if classes == "patched":
        env["PEER_PATCHED_TORCH"] = str(build_patched_torch(cwd / "patched_torch"))
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), str(cwd), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider", "-p", "peer_substitute"]
    cmd += ["--continue-on-collection-errors"]
    cmd += [f"--junitxml={xml}", "-o", "junit_logging=no"]
    t0 = time.time()
    with open(xml.with_suffix(".log"), "w") as log:
        subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return time.time() - t0


_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def parse_junit(xml: pathlib.Path) -> dict[str, tuple[str, str]]:
    """Map test id -> (outcome, first line of the message); the worst outcome wins for duplicates."""
    out: dict[str, tuple[str, str]] = {}
    for tc in ET.parse(xml).getroot().iter("testcase"):
        test_id = f"{tc.get('classname')}::{tc.get('name')}"
        outcome, message = "passed", ""
        for tag in ("skipped", "failure", "error"):
            el = tc.find(tag)
            if el is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (el.get("message") or el.text or "").strip().splitlines()[0:1]
                message = message[0][:400] if message else ""
        if test_id not in out or _RANK[outcome] > _RANK[out[test_id][0]]:
            out[test_id] = (outcome, message)
    return out


def counts(results: dict[str, tuple[str, str]]) -> dict[str, int]:
    c = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for outcome, _ in results.values():
        c[outcome] += 1
    c["total"] = len(results)
    return c


def compare(theirs: dict, ours: dict) -> dict:
    bad = ("failed", "error")
    beyond = {t: ours[t][1] for t in sorted(ours) if ours[t][0] in bad and theirs.get(t, ("", ""))[0] == "passed"}
    skipped_there = {
        t: ours[t][1] for t in sorted(ours) if ours[t][0] in bad and theirs.get(t, ("", ""))[0] == "skipped"
    }
    fixed = sorted(t for t in ours if ours[t][0] == "passed" and theirs.get(t, ("", ""))[0] in bad)
    both = sorted(t for t in ours if ours[t][0] in bad and theirs.get(t, ("", ""))[0] in bad)
    return {
        "theirs": counts(theirs),
        "ours": counts(ours),
        "failures_beyond_baseline": len(beyond),
        "beyond_baseline": beyond,
        "failed_where_theirs_skipped": skipped_there,
        "failed_with_both": both,
        "passed_only_with_ours": fixed,
        "only_with_theirs": sorted(set(theirs) - set(ours)),
        "only_with_ours": sorted(set(ours) - set(theirs)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--suite", choices=("pyro", "torch", "all"), default="all")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "pyro_expfam_peer_suites"))
    p.add_argument("--pyro-git-dir", help="a git directory of pyro-ppl/pyro (default: download the release tag)")
    p.add_argument("--pyro-ref", help="tag or commit (default: the installed version's tag, else HEAD)")
    p.add_argument("--pyro-files", nargs="*", default=list(PYRO_FILES))
    p.add_argument("--torch-test-file", help="a copy of torch's test/distributions/test_distributions.py")
    p.add_argument("--torch-git-dir", help="a git directory of pytorch/pytorch")
    p.add_argument("--torch-ref", help="tag or commit (default: v<installed version>, else HEAD)")
    p.add_argument(
        "--classes",
        choices=("both", "theirs", "ours", "pyro", "patched"),
        default="both",
        help="both: theirs then ours; pyro (torch suite): Pyro's classes, the baseline of a drop-in for "
        "Pyro's; patched (torch suite): torch's classes with the upstream series applied",
    )
    p.add_argument("--reuse", action="store_true", help="re-parse existing JUnit files instead of running")
    args = p.parse_args(argv)

    import pyro
    import torch

    workdir = pathlib.Path(args.workdir)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for suite in ("pyro", "torch") if args.suite == "all" else (args.suite,):
        dest = workdir / suite
        # a run of our classes alone reuses the fetched tests and the baseline of an earlier run
        refetch = not args.reuse and (args.classes in ("both", "theirs") or not (dest / "SOURCE").exists())
        if refetch:
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            if suite == "pyro":
                source = fetch_pyro(dest, args.pyro_git_dir, args.pyro_ref)
            else:
                source = fetch_torch(dest, args.torch_test_file, args.torch_git_dir, args.torch_ref)
            (dest / "SOURCE").write_text(source)
        source = (dest / "SOURCE").read_text()
        paths = [f"tests/distributions/{f}" for f in args.pyro_files] if suite == "pyro" else ["test_distributions.py"]
        modes = ("theirs", "ours") if args.classes == "both" else (args.classes,)
        seconds = {}
        for classes in modes:
            xml = dest / f"junit-{classes}.xml"
            if not args.reuse:
                seconds[classes] = round(run_pytest(dest, paths, suite, classes, xml), 1)
                print(f"{suite}/{classes}: {seconds[classes]} s", flush=True)
        if not all((dest / f"junit-{c}.xml").exists() for c in ("theirs", "ours")):
            continue
        entry = compare(parse_junit(dest / "junit-theirs.xml"), parse_junit(dest / "junit-ours.xml"))
        if (dest / "junit-patched.xml").exists():
            # torch's own tests on torch's classes with the upstream series applied
            patched = parse_junit(dest / "junit-patched.xml")
            entry["patched_series"] = compare(parse_junit(dest / "junit-theirs.xml"), patched)
        if (dest / "junit-pyro.xml").exists():
            # failures beyond those of torch's classes that Pyro's classes (which ours replace) pass
            pyro_run = parse_junit(dest / "junit-pyro.xml")
            entry["pyro_classes"] = counts(pyro_run)
            entry["beyond_torch_and_pyro"] = {
                t: m for t, m in entry["beyond_baseline"].items() if pyro_run.get(t, ("", ""))[0] == "passed"
            }
        entry = {
            "source": source,
            "files": paths,
            "torch": torch.__version__,
            "pyro": pyro.__version__,
            "seconds": {**results.get(suite, {}).get("seconds", {}), **seconds},
            **entry,
        }
        results[suite] = entry
        beyond = len(entry["beyond_baseline"])
        print(f"{suite}: theirs {entry['theirs']}, ours {entry['ours']}, beyond baseline {beyond}")
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CI: the package as users install it (what `pipx install .` does): build a wheel from a copy of the source,
check it holds every file of the package (a data file such as py.typed missed by the packaging fails here),
install it with no extras into a fresh virtual environment, and run the console script.

Usage: python .ci/check_wheel.py   (from anywhere; uses a temporary directory, leaves the tree untouched)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JUNK = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*cache")


def run(*cmd: str | Path) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"check_wheel: {' '.join(map(str, cmd))} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ghostha-wheel-") as tmp:
        work = Path(tmp)
        src = work / "src"
        shutil.copytree(ROOT, src, ignore=JUNK)
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "dist", src)
        wheel = next((work / "dist").glob("ghostha-*.whl"))

        package = {p.relative_to(src).as_posix() for p in (src / "ghostha").rglob("*") if p.is_file()}
        shipped = set(zipfile.ZipFile(wheel).namelist())
        missing = sorted(package - shipped)
        if missing:
            sys.exit(f"check_wheel: the wheel lacks {', '.join(missing)} (add them to package-data in pyproject.toml)")

        venv = work / "venv"
        run(sys.executable, "-m", "venv", venv)
        run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel)
        for args in (["--help"], ["sandbox", "start", "--help"], ["init", "--help"]):
            out = run(venv / "bin" / "ghostha", *args)
            if "Usage: ghostha" not in out:
                sys.exit(f"check_wheel: `ghostha {' '.join(args)}` printed no usage:\n{out}")
        typed = "import importlib.resources as r; assert r.files('ghostha').joinpath('py.typed').is_file()"
        run(venv / "bin" / "python", "-c", typed)
        print(f"check_wheel: {wheel.name} holds all {len(package)} package files; installed with no extras, it runs")


if __name__ == "__main__":
    main()

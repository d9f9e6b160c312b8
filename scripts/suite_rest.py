"""The GPU tests a cut run did not reach: collected node ids minus those in its JUnit XML files.

A device call's pytest run ends at its timeout (scripts/device_lib.sh sends SIGINT, so pytest still writes the
summary and the JUnit XML of what ran). This lists the rest, one node id a line, so the next call can run exactly
those:

    python3 -m scripts.suite_rest single.xml [more.xml ...] [--marker "gpu and not big"] [-- PYTEST_ARGS] > rest.txt
    python3 -m pytest -q $(cat rest.txt)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import xml.etree.ElementTree as ET


def junit_keys(paths) -> set[tuple[str, str]]:
    """(classname, name) of every test case in the JUnit files (run, failed, errored or skipped alike)."""
    keys = set()
    for p in paths:
        for case in ET.parse(p).getroot().iter("testcase"):
            keys.add((case.get("classname", ""), case.get("name", "")))
    return keys


def key_of(nodeid: str) -> tuple[str, str]:
    """pytest's JUnit (classname, name) of a node id: tests/test_a.py::TestB::test_c[x] -> (tests.test_a.TestB,
    test_c[x])."""
    parts = nodeid.split("::")
    module = parts[0][:-3] if parts[0].endswith(".py") else parts[0]
    return ".".join([module.replace("/", ".")] + parts[1:-1]), parts[-1]


def collected(marker: str, args: list[str]) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-m", marker, *args], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if "::" in line and not line.startswith(" ")]


def rest(nodeids: list[str], done: set[tuple[str, str]]) -> list[str]:
    return [n for n in nodeids if key_of(n) not in done]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="after --: the paths / -k the run used (default tests/)")
    ap.add_argument("junit", nargs="+", help="JUnit XML files of the cut run(s)")
    ap.add_argument("--marker", default="gpu and not big", help="the -m expression the run used")
    a = ap.parse_args(argv[:cut])
    left = rest(collected(a.marker, argv[cut + 1:] or ["tests/"]), junit_keys(a.junit))
    print("\n".join(left))
    print(f"{len(left)} not run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

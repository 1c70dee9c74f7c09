"""Import each fraudops package on its own, in a forked child of one warm interpreter.

Run as a script: reads ``{"package": [module, ...]}`` as JSON on stdin, prints
``{"package": "" or the traceback}``. A first child imports every module given and reports the
third-party and standard-library modules that pulled in; the parent imports those (never a
fraudops module), then forks one child per package, which imports that package's modules in the
order given. A fresh interpreter per package paid pandas', pyarrow's and MLflow's import again
24 times (85 CPU-s of the suite); a fork starts from them already loaded, and what the check is
for — a fraudops import that only works after another fraudops package was imported — is
unchanged, since no fraudops module is loaded before the fork.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback


def _in_child(work: object) -> str:
    """Run ``work`` in a forked child; '' on success, else what it wrote (its traceback)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            out = work() or ""  # type: ignore[operator]
            code = 0
        except BaseException:
            out, code = traceback.format_exc(), 1
        os.write(write, out.encode() or b"")
        os.close(write)
        os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode()
    if os.waitstatus_to_exitcode(status) != 0:
        return text or f"child exited with status {status}"
    return text


def main() -> None:
    packages: dict[str, list[str]] = json.load(sys.stdin)
    everything = sorted({m for modules in packages.values() for m in modules})

    def dependencies() -> str:
        for module in everything:
            importlib.import_module(module)
        mine = {m.split(".")[0] for m in everything} | {"fraudops"}
        return json.dumps(sorted(m for m in sys.modules if m.split(".")[0] not in mine))

    found = _in_child(dependencies)
    try:
        outside = json.loads(found)
    except json.JSONDecodeError:  # the whole package fails to import: let each child say how
        outside = []
    for module in outside:
        try:
            importlib.import_module(module)
        except Exception:  # a private or platform module: the child imports what it needs
            continue
    assert not any(m.split(".")[0] == "fraudops" for m in sys.modules), "fraudops loaded early"

    def importer(modules: list[str]) -> object:
        def work() -> str:
            for module in modules:
                importlib.import_module(module)
            return ""

        return work

    results = {package: _in_child(importer(modules)) for package, modules in packages.items()}
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()

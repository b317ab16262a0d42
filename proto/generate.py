"""Regenerate the Python code of the wire contract: ``python proto/generate.py``.

``--check`` regenerates into a temporary directory and exits non-zero when the committed code
differs (the test suite runs it, so stale generated code fails the build).
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE = Path("protoken") / "v1"
GENERATED = ("federation_pb2.py", "federation_pb2.pyi", "federation_pb2_grpc.py")


def generate(out_root: Path) -> None:
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out_root}",
            f"--pyi_out={out_root}", f"--grpc_python_out={out_root}", *sources]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def stale_files() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        return [name for name in GENERATED
                if not (PROTO_ROOT / PACKAGE / name).exists()
                or not filecmp.cmp(Path(tmp) / PACKAGE / name, PROTO_ROOT / PACKAGE / name, shallow=False)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the committed code is stale")
    if parser.parse_args().check:
        stale = stale_files()
        if stale:
            print(f"stale generated code: {', '.join(stale)}; run: python proto/generate.py", file=sys.stderr)
            return 1
        print("generated code is up to date")
        return 0
    generate(PROTO_ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())

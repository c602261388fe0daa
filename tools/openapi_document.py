"""Write the service's OpenAPI document (what `/openapi.json` serves with the default
settings) to a file, for `make client`: `python -m tools.openapi_document PATH`."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def document() -> dict[str, Any]:
    from service import create_app
    from service.api.openapi_document import build_document
    from service.config import Settings

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Settings(_env_file=None, data_dir=Path(folder)))
        doc: dict[str, Any] = json.loads(build_document(app).body)
    return doc


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m tools.openapi_document PATH\n")
        return 2
    Path(argv[0]).write_text(json.dumps(document(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

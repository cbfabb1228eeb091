"""Serve MathJax 3 from the site itself, so that math renders with no network.

Sphinx points MathJax at a CDN by default, which a classroom behind a firewall (or this build
machine) cannot reach. ``make setup`` installs the pinned ``mathjax`` npm package; this extension
points ``mathjax_path`` at ``_static/mathjax/tex-chtml.js`` and copies only what that bundle loads:
the script, its TeX extensions (loaded on demand) and its woff-v2 fonts (about 2 MB, not 24).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

ES5 = Path(__file__).resolve().parent.parent / "node_modules" / "mathjax" / "es5"
PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2")


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    missing = [part for part in PARTS if not (ES5 / part).exists()]
    if missing:
        raise ExtensionError(
            f"MathJax files missing under {ES5} ({', '.join(missing)}): run `make setup`"
        )
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        source, dest = ES5 / part, target / part
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest)


def setup(app: Sphinx) -> dict[str, object]:
    app.config.mathjax_path = (
        "mathjax/tex-chtml.js"  # relative: Sphinx serves it from _static/
    )
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

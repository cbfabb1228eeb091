"""Math in the pages the instructor hands out, typeset when they are written (no CDN, no script).

Feedback pages, the grading guide and the class report are opened offline, from a course hub,
an e-mail or a file system: a page that asks a CDN for MathJax shows raw ``$...$`` there. So the
project's own MathJax (``mathjax-full``, pinned in ``package.json``, run by Node.js) typesets each
page once, to SVG with MathML for screen readers, through ``typeset_math.mjs``. One Node process
serves a whole batch. Without Node (or ``make setup``'s ``node_modules``), a page keeps its TeX
and the instructor's log says why once; grading never depends on it.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
from pathlib import Path

from autograder.paths import ROOT

SCRIPT = Path(__file__).with_name("typeset_math.mjs")
MATHJAX = ROOT / "node_modules" / "mathjax-full"
SECONDS_PER_PAGE = 60.0  # a generous bound: a long notebook page takes about a second

log = logging.getLogger(__name__)


class Typesetter:
    """A Node.js process that typesets pages one after another (``with Typesetter() as t``)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._warned = False

    def __enter__(self) -> Typesetter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()  # Node ends at the end of its input
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        process.stdout.close()

    def _warn(self, why: str) -> None:
        if not self._warned:
            log.warning("math left as TeX in the pages: %s", why)
            self._warned = True

    def _start(self) -> subprocess.Popen | None:
        node = shutil.which("node")
        if node is None or not MATHJAX.is_dir():
            self._warn(
                "Node.js or node_modules/mathjax-full is missing (run `make setup`)"
            )
            return None
        return subprocess.Popen(
            [node, str(SCRIPT)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )

    def typeset(
        self, page: str, css: str = "", lang: str = "", fragment: bool = False
    ) -> str:
        """``page`` with its math typeset, or unchanged if that cannot be done.

        ``css`` is added to the page's styles, and ``lang`` set where the page has none. A
        ``fragment`` (a piece of HTML, such as a formgrader cell) comes back as a piece, each
        formula self-contained. Student TeX cannot make a link, a style or a request (see
        ``typeset_math.mjs``), so the result needs no second sanitising.
        """
        ask = {"html": page, "css": css, "lang": lang, "fragment": fragment}
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            if self._process is None:
                return page
            reply = self._ask(json.dumps(ask))
        if reply is None:
            self.close()
            self._warn("the typesetter stopped or took too long on a page")
            return page
        if "html" not in reply:
            self._warn(f"MathJax failed on a page: {reply.get('error')}")
            return page
        return reply["html"]

    def _ask(self, line: str) -> dict | None:
        """Send one page, read one reply within the time limit (a timer kills a hung Node)."""
        process = self._process
        timer = threading.Timer(SECONDS_PER_PAGE, process.kill)
        timer.start()
        try:
            process.stdin.write(line + "\n")
            process.stdin.flush()
            answer = process.stdout.readline()
            return json.loads(answer) if answer else None
        except (OSError, ValueError):
            return None
        finally:
            timer.cancel()

    def typeset_file(self, path: Path) -> None:
        """Typeset an HTML file in place."""
        path.write_text(
            self.typeset(path.read_text(encoding="utf-8")), encoding="utf-8"
        )

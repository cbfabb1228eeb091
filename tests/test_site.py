"""The website as students meet it: built offline, served on 127.0.0.1, read in headless Chromium.

The site is the one `make build` writes in a fresh clone of this checkout (tests/fresh_clone.py),
which must leave every tracked file as committed. Screenshots of every page are kept in
artifacts/screenshots/ for a human to look at.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from conftest import (
    GRADED,
    NOT_WRITTEN,
    NOTEBOOK_OF,
    visible_not_written,
    written_answer_ids,
)
from fresh_clone import clone_env, git, make_build, scratch_clone
from pages import LAPTOP, PHONE, SCREENSHOTS, Visit, assert_axe_finds_nothing

from autograder.paths import RELEASE_DIR, ROOT

pytestmark = pytest.mark.slow

PAGES = {
    "intro.html": "Multiple Input and Multiple Output Channels",
    "chapters/channels/01-multiple-input-channels.html": "7.4.1 Multiple Input Channels",
    "chapters/channels/02-multiple-output-channels.html": "7.4.2 Multiple Output Channels",
    "chapters/channels/03-1x1-convolution.html": "7.4.3 The 1 × 1 Convolutional Layer",
    "chapters/channels/04-discussion.html": "7.4.4 Discussion",
    "chapters/channels/05-exercises.html": "7.4.5 Exercises",
    "chapters/channels/06-how-fast.html": "How fast is each implementation?",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`make build` in a fresh clone (warnings are errors), once for the file, and it worked:
    the clone and what make said. Every notebook runs, as the clone's execution cache starts
    empty."""
    clone = scratch_clone(tmp_path_factory.mktemp("fresh") / "clone")
    done = make_build(clone)
    assert done.returncode == 0, (
        f"make build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return clone, done


@pytest.fixture(scope="module")
def site(built) -> Path:
    clone, _ = built
    return clone / "_build" / "html"


def test_make_build_on_a_fresh_clone_leaves_every_tracked_file_as_committed(built):
    clone, done = built
    assert "wrote 6 notebooks" in done.stdout  # the release really ran
    # Nothing a user must wonder about (each kernel once warned of TCP without encryption).
    assert "without encryption" not in done.stdout + done.stderr
    assert git(clone, "status", "--porcelain") == ""
    check = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-m", "autograder", "check-release"],
        cwd=clone, env=clone_env(clone), capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=site)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def visit(browser, base_url) -> Iterator:
    visits: list[Visit] = []

    def open_page(path: str, **options) -> Visit:
        visits.append(Visit(browser, base_url + path, **options))
        return visits[-1]

    yield open_page
    for v in visits:
        v.page.close()


@pytest.fixture(scope="module")
def shown(browser, base_url) -> Iterator[Callable[..., Visit]]:
    """Each page loaded once per view (colour mode, window size) and shared by the tests that
    only read it: a load that typesets a page's math in software is most of this file's CPU
    time. A test that types, clicks or leaves the page takes a page of its own (``visit``)."""
    loaded: dict[tuple, Visit] = {}

    def view(path: str, mode: str = "light", size: tuple[int, int] = LAPTOP) -> Visit:
        key = (path, mode, size)
        if key not in loaded:
            loaded[key] = Visit(browser, base_url + path, mode=mode, size=size)
        return loaded[key]

    yield view
    for v in loaded.values():
        v.page.close()


def test_the_browser_opens_no_page_besides_the_ones_the_tests_load(browser):
    """CHROMIUM_ARGS turns off the address bar's popups by their feature names, which a new
    Chromium may rename; then each page would bring its hidden renderer back."""
    session = browser.new_browser_cdp_session()
    page = browser.new_page()
    page.goto("data:text/html,<title>blank</title>")
    urls = [t["url"] for t in session.send("Target.getTargets")["targetInfos"]]
    page.close()
    assert [u for u in urls if u.startswith("chrome://")] == []


@pytest.mark.parametrize("path", sorted(PAGES))
def test_page_loads_cleanly_offline(shown, path):
    """(Its screenshot at this size is test_page_fits_the_width's ``-1280px``.)"""
    v = shown(path)
    assert v.page.inner_text("h1").strip().rstrip("#").strip() == PAGES[path]
    assert v.console_errors == []
    assert v.outside_requests == []
    assert v.failed == []


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("path", sorted(PAGES))
def test_page_has_no_wcag_2_2_aa_violation_in_axe(shown, path, mode):
    v = shown(path, mode=mode)
    assert v.page.evaluate("document.documentElement.dataset.theme") == mode
    assert_axe_finds_nothing(v.page)


# The control that has keyboard focus: is it shown, and does it show that it has focus? A
# ring is an outline, or a box-shadow that is not inset (the sidebar marks the current page
# with an inset one, focused or not), of some width and a colour that is not transparent.
FOCUSED = r"""() => {
  const el = document.activeElement;
  if (el === document.body || el === null) return null;
  el.dataset.reachedByTab = "yes";
  el.getAnimations().forEach(a => a.finish());  // a fade-in counts as shown: where it ends
  const cs = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  let opacity = 1;
  for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
  const seen = c => !/^(transparent|rgba\(.*, 0\))$/.test(c);
  const outline = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0
    && seen(cs.outlineColor);
  const shadow = cs.boxShadow.split(/,(?![^(]*\))/).some(s => !s.includes("inset")
    && /(\d+(\.\d+)?)px\s*$/.test(s.trim()) && parseFloat(s.trim().split(/\s+/).pop()) > 0
    && seen(s));
  const name = el.innerText || el.getAttribute("aria-label") || el.title || el.className;
  return {what: `${el.tagName} ${String(name).trim().slice(0, 40)}`,
          shown: opacity > 0 && box.width > 0 && box.height > 0 && cs.visibility === "visible",
          ring: outline || shadow};
}"""
# Every control a reader could use, as shown on the page (hidden menus and the like excluded).
UNREACHED = r"""() => [...document.querySelectorAll(
    "a[href], button, summary, input, select, textarea, [tabindex]:not([tabindex='-1'])")]
  .filter(el => el.checkVisibility({visibilityProperty: true})  // not in a closed <details>
                && !el.closest("[inert], [aria-hidden='true']") && !el.disabled
                && !el.dataset.reachedByTab)
  .map(el => `${el.tagName} ${(el.innerText || el.getAttribute("aria-label") || "").trim()
                .slice(0, 40)}`)"""


@pytest.mark.parametrize("path", sorted(PAGES))
def test_every_control_is_reached_by_tab_and_shows_its_focus(visit, path):
    v = visit(path)
    stops = []
    for _ in range(1000):
        v.page.keyboard.press("Tab")
        stop = v.page.evaluate(FOCUSED)
        if stop is None or (stops and stop == stops[0]):
            break  # back at the start: every stop visited
        stops.append(stop)
    assert len(stops) > 10
    invisible = [s["what"] for s in stops if not s["shown"]]
    unringed = [s["what"] for s in stops if not s["ring"]]
    assert (invisible, unringed) == ([], []), "focused while invisible, or with no ring"
    assert v.page.evaluate(UNREACHED) == []


# What overflows its box, and so scrolls sideways: only code and tables may.
OVERFLOWING = r"""() => [...document.querySelectorAll("main *")]
  .filter(e => e.scrollWidth > e.clientWidth + 1
               && ["auto", "scroll"].includes(getComputedStyle(e).overflowX))
  .map(e => e.matches("pre, .pst-scrollable-table-container") ? "code or table"
                                                              : `${e.tagName}.${e.className}`)"""
# For each box that scrolls sideways: its shadow, then the side with more after loading and
# after scrolling to the end.
SIDEWAYS_CUES = r"""async () => {
  const cues = [];
  const side = b => b.classList.contains("more-to-the-right") ? "right"
                  : b.classList.contains("more-to-the-left") ? "left" : "none";
  for (const box of document.querySelectorAll("main pre, .pst-scrollable-table-container")) {
    if (box.scrollWidth <= box.clientWidth + 1 || !box.checkVisibility()) continue;
    const shadow = getComputedStyle(box).boxShadow.includes("inset") ? "inset shadow" : "none";
    const before = side(box);
    box.scrollLeft = box.scrollWidth;
    await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
    cues.push([shadow, before, side(box)]);
  }
  return cues;
}"""


@pytest.mark.parametrize("size", [PHONE, LAPTOP], ids=["phone", "laptop"])
@pytest.mark.parametrize("path", sorted(PAGES))
def test_page_fits_the_width_with_only_code_and_tables_scrolling(shown, path, size):
    v = shown(path, size=size)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{Path(path).stem}-{size[0]}px.png"
    v.page.screenshot(path=shot, full_page=True)
    width = v.page.evaluate(
        "[document.documentElement.clientWidth, document.body.scrollWidth]"
    )
    assert width[1] <= width[0], (
        f"the page scrolls sideways: {width[1]} px in {width[0]}"
    )
    assert set(v.page.evaluate(OVERFLOWING)) <= {"code or table"}
    # Each box that scrolls shows it, by a shadow on the side that hides more, until the
    # reader has scrolled to that side.
    cues = v.page.evaluate(SIDEWAYS_CUES)
    assert all(cue == ["inset shadow", "right", "left"] for cue in cues), cues
    # MathJax 3 cannot break a display equation across lines: each must fit as written.
    too_wide = v.page.evaluate(
        """() => [...document.querySelectorAll("mjx-container[display='true']")]
                 .filter(m => m.scrollWidth > m.clientWidth + 1)
                 .map(m => m.textContent.slice(0, 40))"""
    )
    assert too_wide == []


# Each figure of the page: whether it is SVG, and the size of its smallest text as shown, in
# CSS px (its text's size in the SVG's own units, times the scale at which the page shows it).
FIGURE_TEXT = r"""async () => {
  const found = [];
  for (const img of document.querySelectorAll("main img")) {
    const src = img.currentSrc, shown = img.getBoundingClientRect().width;
    if (!src.endsWith(".svg")) { found.push({src, svg: false}); continue; }
    const svg = new DOMParser().parseFromString(await (await fetch(src)).text(), "image/svg+xml");
    const units = parseFloat(svg.documentElement.getAttribute("viewBox").split(/\s+/)[2]);
    const sizes = [...svg.querySelectorAll("text")].map(t =>
      parseFloat((t.getAttribute("style") || "").match(/font(?:-size)?:[^;]*?([\d.]+)px/)[1]));
    found.push({src, svg: true, texts: sizes.length,
                smallest: Math.min(...sizes) * shown / units});
  }
  return found;
}"""


@pytest.mark.parametrize("size", [PHONE, LAPTOP], ids=["phone", "laptop"])
@pytest.mark.parametrize("path", sorted(PAGES))
def test_figures_are_svg_with_text_of_at_least_10_px(shown, path, size):
    figures = shown(path, size=size).page.evaluate(FIGURE_TEXT)
    for figure in figures:
        assert figure["svg"] and figure["texts"] > 0, figure["src"]
        assert figure["smallest"] >= 10, figure
    pages_with_figures = {  # the figures drawn by code; a page that loses one fails here
        "chapters/channels/01-multiple-input-channels.html": 1,
        "chapters/channels/03-1x1-convolution.html": 1,
    }
    if path in pages_with_figures:
        assert len(figures) == pages_with_figures[path]
    if path.endswith("06-how-fast.html"):
        assert len(figures) >= 2  # the live CPU run, and each stored run


def test_one_print_is_one_output_box(shown):
    v = shown("chapters/channels/01-multiple-input-channels.html")
    # A kernel may send one print() in pieces; the page shows what the reader printed.
    boxes = v.page.locator(".cell_output").evaluate_all(
        "outs => outs.map(o => o.querySelectorAll(':scope > .output.stream').length)"
    )
    assert boxes and max(boxes) == 1
    assert "X_batch: (1, 2, 3, 3)  K_batch: (1, 2, 2, 2)" in v.main_text()


def test_search_results_quote_math_as_text_not_tex(visit):
    v = visit("search.html?q=kernel")
    # Sphinx shows "Search finished, found 7 page(s) ..." once every snippet is in.
    v.page.wait_for_selector("p.search-summary")
    snippets = v.page.locator("p.context").all_inner_texts()
    assert len(snippets) >= 5
    for raw in ("\\(", "\\[", "\\times", "\\sum"):
        assert not any(raw in s for s in snippets), raw
    # The formula of 7.4.3, quoted as text.
    assert any("c_o × c_i × 1 × 1" in s for s in snippets), snippets


@pytest.mark.parametrize(
    "path", [p for p in sorted(PAGES) if p.startswith("chapters/")]
)
def test_a_line_of_88_characters_fits_a_code_cell_on_a_laptop(shown, path):
    # The course's code is formatted at 88 characters a line (ruff): it should not scroll.
    v = shown(path, size=LAPTOP)
    room, line = v.page.evaluate(
        """() => {
          const pre = document.querySelector("main .cell_input pre");
          const cs = getComputedStyle(pre);
          const probe = pre.appendChild(document.createElement("span"));
          probe.textContent = "x".repeat(88);
          const line = probe.getBoundingClientRect().width;
          probe.remove();
          return [pre.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight),
                  line];
        }"""
    )
    assert room >= line, f"{room:.0f} px for a line of {line:.0f} px"


@pytest.mark.parametrize("path", sorted(PAGES))
def test_math_is_typeset_with_no_raw_tex_left(shown, path):
    v = shown(path)
    assert v.page.locator("mjx-container").count() > 0, "no typeset math on the page"
    text = v.main_text()
    for raw in ("\\(", "\\[", "$$", "\\times", "\\sum"):
        assert raw not in text, f"untypeset TeX {raw!r} on {path}"


@pytest.mark.parametrize(
    ("path", "caption"),
    [
        (
            "chapters/channels/01-multiple-input-channels.html",
            "Figure 7.4.1 Cross-correlation with two input channels",
        ),
        (
            "chapters/channels/03-1x1-convolution.html",
            "Figure 7.4.2 A 1 × 1 convolution with three input channels",
        ),
        (
            "chapters/channels/06-how-fast.html",
            "Figure 7.4.3 Seconds per call of the four implementations",
        ),
    ],
)
def test_code_drawn_figure_is_a_visible_image_with_alt_text_and_caption(
    shown, path, caption
):
    v = shown(path)
    figure = v.page.locator("figure", has_text=caption.split(" ", 2)[2])
    # Numbered as in the book's section 7.4 (the speed chapter's plot comes third).
    text = " ".join(figure.locator("figcaption").inner_text().split())
    assert text.startswith(caption), text
    image = figure.locator("img")
    image.scroll_into_view_if_needed()
    assert image.evaluate(
        "img => img.complete && img.naturalWidth > 300 && img.naturalHeight > 200"
    )
    box = image.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200
    assert len(image.get_attribute("alt") or "") > 50


def test_worked_examples_are_computed_live_on_the_pages(shown):
    def words(path: str) -> str:
        return " ".join(shown(path).main_text().split())

    assert "tensor([[ 56., 72.], [104., 120.]])" in words(
        "chapters/channels/01-multiple-input-channels.html"
    )
    page_2 = words("chapters/channels/02-multiple-output-channels.html")
    assert "torch.Size([3, 2, 2, 2])" in page_2
    assert "[[ 76., 100.], [148., 172.]], [[ 96., 128.], [192., 224.]]])" in page_2
    page_3 = words("chapters/channels/03-1x1-convolution.html")
    assert "parameters of the 1 x 1 convolution: 8 = 2 * 3 + 2" in page_3
    page_4 = words("chapters/channels/04-discussion.html")
    assert "operations: 53,687,091,200 (53.7 billion)" in page_4  # the book's example


def test_exercises_page_shows_its_demonstrations_computed(shown):
    text = " ".join(shown("chapters/channels/05-exercises.html").main_text().split())
    assert "(112, 112)" in text  # the first layer of a ResNet, by the given output size
    assert (
        "nn.Conv2d(groups=b)" in text and "speed-up over b = 1" in text
    )  # a timed run
    written = [
        g for g in written_answer_ids() if NOTEBOOK_OF[g] == "05-exercises.ipynb"
    ]
    assert text.count("YOUR ANSWER HERE") == len(written) == 7
    assert "Model answer" not in text and "Rubric" not in text


def test_no_check_of_a_written_answer_shows_its_result_on_the_website(shown):
    """A "Check your answer" cell comes after the answer and prints nothing here: the reveal
    waits until the student runs it, after answering (issue 28)."""
    text = " ".join(shown("chapters/channels/05-exercises.html").main_text().split())
    assert text.count("Check your answer") == 3
    # What the three checks print (their code, which the page shows, prints none of it).
    for printed in (
        r"\d times the multiplications",
        r"\d operations \(",
        r"largest difference \d",
        r"the book's check (passes|fails)",
        r"react to input 0: \[",
    ):
        assert not re.search(printed, text), printed


def test_speed_page_labels_its_measurements_with_the_machine(shown):
    v = shown("chapters/channels/06-how-fast.html")
    stored = sorted((RELEASE_DIR / "speed").glob("cuda-*.json"))
    tables = v.page.locator("main table")
    # Time with ratios to conv2d, and rate against the matmul yardstick: for the run made
    # while the page was built, and for each stored GPU run.
    assert tables.count() == 2 * (1 + len(stored))
    header = tables.nth(0).locator("thead").inner_text()
    for name in ("torch conv2d", "loop", "1×1 matmul", "im2col matmul"):
        assert name in header
    text = " ".join(v.main_text().split())
    assert f"torch {torch.__version__}" in text
    for path in stored:
        run = json.loads(path.read_text())
        assert f"stored in speed/{path.name}" in text
        assert f"{run['device']} · torch {run['torch']} · {run['date']}" in text
    if not stored:
        assert "No GPU run is stored in speed/ yet." in text


def test_no_traceback_and_no_solution_is_shown(shown):
    for path in PAGES:
        text = shown(path).main_text()
        assert "Traceback" not in text and "NotImplementedError" not in text.replace(
            "raise NotImplementedError()", ""
        ), path
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, path


def test_next_and_previous_links_walk_through_the_chapters(visit):
    order = list(PAGES)
    v = visit(order[0])
    for expected in order[1:]:
        v.page.click("a.right-next")
        v.page.wait_for_load_state("networkidle")
        assert v.page.url.endswith(expected)
        assert v.page.inner_text("h1").strip().rstrip("#").strip() == PAGES[expected]
    v.page.click("a.left-prev")
    v.page.wait_for_load_state("networkidle")
    assert v.page.url.endswith(order[-2])


def test_sidebar_links_reach_every_chapter(visit):
    v = visit("intro.html")
    for path, title in list(PAGES.items())[1:]:
        v.page.click(f"nav.bd-docs-nav a[href$='{Path(path).name}']")
        v.page.wait_for_load_state("networkidle")
        assert v.page.inner_text("h1").strip().rstrip("#").strip() == title


@pytest.mark.parametrize("name", GRADED)
def test_download_button_serves_the_student_notebook(shown, name):
    v = shown(f"chapters/channels/{Path(NOTEBOOK_OF[name]).stem}.html")
    link = v.page.locator("a.btn-download-source-button")
    assert link.count() == 1
    response = v.page.request.get(
        v.page.url.rsplit("/", 1)[0] + "/" + link.get_attribute("href")
    )
    assert response.ok
    nb = json.loads(response.text())
    stub = next(
        c
        for c in nb["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade_id") == name
    )
    assert "raise NotImplementedError()" in "".join(stub["source"])


def test_site_build_runs_every_release_cell_and_the_stubs_say_so_in_one_line(built):
    """At build time no cell of the release fails, although no function is written: each
    visible test says that its function is not written yet and what to do, and each cell that
    shows a function at work says in one line that it is not written yet.

    This build is also the suite's Run All of each untouched release notebook (the other
    stages of a student's work are in tests/test_run_all.py): jupyter-book runs every cell
    in a fresh kernel through nbclient, as Jupyter does, and stops the build at an error.
    The outputs are read from the build's execution cache, because the page (and its copy in
    _build/jupyter_execute) drops the outputs of cells tagged remove-output.
    """
    from jupyter_cache import get_cache

    clone, _ = built
    cache = get_cache(clone / "_build" / ".jupyter_cache")
    visible, at_work = [], 0
    for path in sorted((clone / RELEASE_DIR.relative_to(ROOT)).glob("*.ipynb")):
        _, executed = cache.merge_match_into_file(str(path))
        for cell in executed.cells:
            if cell.cell_type != "code":
                continue
            assert cell.execution_count, (path.name, "did not run", cell.source[:60])
            assert not [o for o in cell.outputs if o.output_type == "error"], (
                path.name,
                cell.source[:60],
            )
            text = "".join(o.get("text", "") for o in cell.outputs)
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if grade_id.startswith("test_") and grade_id.endswith("_example"):
                function = grade_id.removeprefix("test_").removesuffix("_example")
                assert text == visible_not_written(function) + "\n", (
                    path.name,
                    grade_id,
                )
                visible.append(function)
            elif "if written(" in cell.source:
                assert text.count(NOT_WRITTEN) == 1 and len(text.splitlines()) == 1, (
                    path.name,
                    cell.source[:60],
                )
                at_work += 1
    # A visible test each, in the chapters' order, and the seven cells that show a function at
    # work (7.4.1-7.4.3 one each; 7.4.5: im2col, the cost ratios, the book's example counted,
    # the composed kernel).
    assert visible == list(GRADED)
    assert at_work == 7


def test_the_site_serves_no_solution_and_no_model_answer(site: Path):
    """Every file of the built site (pages, downloadable notebooks, sources, scripts): no
    reference or answer code, no model answer (see tests/test_kit.py for the release)."""
    from conftest import model_answers, solution_lines

    answers, written = solution_lines(), [s for _, s in model_answers()]
    leaks = []
    for path in site.rglob("*"):
        if path.suffix not in {".html", ".ipynb", ".md", ".txt", ".js", ".json", ".py"}:
            continue
        text = path.read_text(errors="replace")
        leaks += [(path.name, s[:40]) for s in (*answers, *written) if s in text]
    assert leaks == []
    assert any(site.rglob("*.ipynb")), "the site offers the notebooks for download"

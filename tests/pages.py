"""What a reader sees in Chromium: one page load with what the browser complained about, and
axe-core's verdict at WCAG 2.2 AA. Shared by the site's tests and the instructor pages' tests."""

from __future__ import annotations

from urllib.parse import urlparse

from autograder.paths import ROOT

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PHONE, LAPTOP = (390, 844), (1280, 800)  # the two widths every page is read at


# How long a page may take to load or an element to appear before a test fails: a server that
# renders a notebook (formgrader, nbconvert) takes seconds on a quiet 2-core machine and several
# times that under the rest of the suite. A wait for a condition, not a timing assertion.
PATIENCE_MS = 120_000


class Visit:
    """One page load, with everything the browser complained about or tried to fetch."""

    def __init__(
        self,
        browser,
        url: str,
        mode: str = "light",
        size: tuple[int, int] = (1280, 900),
    ) -> None:
        self.page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        self.page.set_default_timeout(PATIENCE_MS)
        # The theme's colour mode, as a reader's earlier choice leaves it in localStorage.
        self.page.add_init_script(f"localStorage.setItem('mode', '{mode}')")
        self.console_errors: list[str] = []
        self.outside_requests: list[str] = []
        self.failed: list[str] = []
        self.page.on(
            "console",
            lambda m: m.type == "error" and self.console_errors.append(m.text),
        )
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.on(
            "request",
            lambda r: (
                urlparse(r.url).hostname not in ("127.0.0.1", None)
                and self.outside_requests.append(r.url)
            ),
        )
        response = self.page.goto(url, wait_until="networkidle")
        assert response is not None and response.ok, url
        # MathJax typesets asynchronously; wait for it where the page has math.
        self.page.wait_for_function(
            "!window.MathJax || (MathJax.startup && MathJax.startup.promise)"
        )
        self.page.evaluate("window.MathJax ? MathJax.startup.promise : null")

    def main_text(self) -> str:
        return self.page.inner_text("main")


# axe-core's rules for WCAG 2.0, 2.1 and 2.2 at levels A and AA (no rule is disabled).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def assert_axe_finds_nothing(page) -> None:
    """axe-core at WCAG 2.2 AA on the page as loaded: no violation, nothing left undecided."""
    # From the pinned npm package, through DevTools rather than a <script>: the project's own
    # pages forbid every script (untrusted.CSP), which must not stop the auditor.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    problems = [
        f"{rule['id']} ({rule['impact']}): {node['target']} {node['failureSummary']}"
        for rule in result["violations"]
        for node in rule["nodes"]
    ]
    assert problems == [], "\n".join(problems)
    # A page that axe could not judge is not a page that passed.
    assert [rule["id"] for rule in result["incomplete"]] == []
    assert "color-contrast" in [rule["id"] for rule in result["passes"]]

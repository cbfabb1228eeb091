// The theme's buttons, named by what they show (see _ext/accessibility.py).
function nameControlsByWhatTheyShow() {
  // The colour-mode icons are decoration: the button's label, "Color mode", names it. Font
  // Awesome turns each <i title="Light"> into an <svg> with a <title>, which counts as text
  // shown in the button and so must be in its name; the icons need no title of their own.
  for (const icon of document.querySelectorAll(".theme-switch-button .theme-switch")) {
    icon.setAttribute("aria-hidden", "true");
    icon.removeAttribute("title");
    icon.removeAttribute("aria-labelledby");
    icon.querySelector("title")?.remove();
  }
  // The search field shows "Search Ctrl+K": its name is that text, not a shorter label.
  for (const field of document.querySelectorAll(".search-button-field[aria-label]")) {
    field.removeAttribute("aria-label");
  }
}
// Before and after Font Awesome replaces the icons (it may do either first).
document.addEventListener("DOMContentLoaded", nameControlsByWhatTheyShow);
window.addEventListener("load", nameControlsByWhatTheyShow);

// Search results quote each page's text, in which inline math is still TeX ("\(c_i \times
// k_h\)"): quote it as text a reader can read ("c_i × k_h"). Sphinx's searchtools.js, loaded
// before this script on the search page, turns a fetched page into that text.
const TEX_WORDS = {
  times: "×", cdot: "·", sum: "∑", epsilon: "ε", approx: "≈", le: "≤", leq: "≤", ge: "≥",
  geq: "≥", neq: "≠", lfloor: "⌊", rfloor: "⌋", star: "⋆", to: "→", infty: "∞", in: "∈",
};
function readableTex(tex) {
  return tex
    .replace(/\\(?:textrm|mathrm|mathbf|operatorname|text)\{([^{}]*)\}/g, "$1")
    .replace(/\\frac\{([^{}]*)\}\{([^{}]*)\}/g, "($1)/($2)")
    .replace(/\\(left|right|Big|big|Bigg|bigg)\b/g, "")
    .replace(/\\[,;:! ]|\\q?quad\b/g, " ")
    .replace(/\\([A-Za-z]+)/g, (whole, word) => TEX_WORDS[word] ?? word)
    .replace(/[{}]/g, "")
    .replace(/\s+/g, " ")
    .trim();
}
// `const Search` of a classic script is a global binding, not a property of window.
if (typeof Search !== "undefined" && Search.htmlToText) {
  const pageText = Search.htmlToText;
  Search.htmlToText = (html, anchor) =>
    pageText(
      html.replace(/\\\((.*?)\\\)|\\\[(.*?)\\\]/gs, (_, inline, display) =>
        readableTex(inline ?? display),
      ),
      anchor,
    );
}

// Code and tables wider than the page scroll sideways inside their box; a shadow on the side
// that hides more content says so (accessibility.css), and goes once that side is reached.
function markSideways(box) {
  const hidden = box.scrollWidth - box.clientWidth;
  box.classList.toggle("more-to-the-right", hidden > 1 && box.scrollLeft < hidden - 1);
  box.classList.toggle("more-to-the-left", hidden > 1 && box.scrollLeft > 1);
}
document.addEventListener("DOMContentLoaded", () => {
  // Whenever a box changes size (the window, a font arriving, a screenshot tool's resize).
  const resized = new ResizeObserver((entries) => entries.forEach((e) => markSideways(e.target)));
  for (const box of document.querySelectorAll("main pre, main .pst-scrollable-table-container")) {
    resized.observe(box);
    box.addEventListener("scroll", () => markSideways(box), { passive: true });
  }
});

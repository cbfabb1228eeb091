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

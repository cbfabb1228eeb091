// Typesets the TeX in HTML pages with the project's own MathJax (mathjax-full, pinned in
// package.json), here, once: the page then carries its math as SVG with MathML for screen readers
// and needs no script and no CDN when a student or an instructor opens it, even offline.
//
// A filter for autograder/outputs/typeset.py: one JSON line in ({"html": ..., and optionally
// "css" to add and the page's "lang" where it has none}), one JSON line out
// ({"html": ...} or {"error": ...}), for as many pages as it is sent; one process serves a batch.
// With "fragment": true, "html" is a piece of a page (a formgrader cell) and comes back as one,
// each formula self-contained.
//
// The TeX is a student's: it is typeset without the packages that make links, classes, styles,
// ids, data attributes or font requests (html: \href \class \style \cssId \data; unicode), and
// MathJax's safe extension filters whatever attributes the other packages make (\bbox's style):
// no URL at all, only MathJax's own classes and ids, only the safe styles.
import { createInterface } from "node:readline";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { mathjax } = require("mathjax-full/js/mathjax.js");
const { TeX } = require("mathjax-full/js/input/tex.js");
const { SVG } = require("mathjax-full/js/output/svg.js");
const { liteAdaptor } = require("mathjax-full/js/adaptors/liteAdaptor.js");
const { RegisterHTMLHandler } = require("mathjax-full/js/handlers/html.js");
const { AssistiveMmlHandler } = require("mathjax-full/js/a11y/assistive-mml.js");
const { AllPackages } = require("mathjax-full/js/input/tex/AllPackages.js");
const { SafeHandler } = require("mathjax-full/js/ui/safe/SafeHandler.js");

const adaptor = liteAdaptor({ fontSize: 16 });
SafeHandler(AssistiveMmlHandler(RegisterHTMLHandler(adaptor)));
const UNSAFE = new Set(["html", "unicode", "bussproofs", "require", "autoload"]);
const PACKAGES = AllPackages.filter((name) => !UNSAFE.has(name));
const SAFE = { allow: { URLs: "none", classes: "safe", cssIDs: "safe", styles: "safe" } };

// Output text wraps instead of widening the page; math wider than the column shrinks to fit.
const READABLE = `
pre, .output_text pre, .output_stream pre { white-space: pre-wrap; overflow-wrap: break-word; }
mjx-container[display="true"] { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
mjx-container > svg { max-width: 100%; height: auto; }
mjx-container mjx-assistive-mml { width: 1px !important; }  /* read aloud, never widens the page */
`;

// nbconvert's words for an image its notebook gave no description.
const NO_ALT = "No description has been provided for this image";

function typeset({ html: page, css = "", lang = "", fragment = false }) {
  const doc = mathjax.document(fragment ? `<html><head></head><body>${page}</body></html>` : page, {
    InputJax: new TeX({
      packages: PACKAGES,
      inlineMath: [["$", "$"], ["\\(", "\\)"]],
      processEscapes: true,
    }),
    OutputJax: new SVG({ fontCache: fragment ? "local" : "global" }),
    safeOptions: SAFE,
  });
  doc.render();
  if (fragment) {
    const math = Array.from(doc.math).length > 0;
    const styles = math ? `<style>${adaptor.textContent(doc.outputJax.svgStyles)}</style>` : "";
    return styles + adaptor.innerHTML(adaptor.body(doc.document));
  }
  const root = adaptor.root(doc.document);
  // The templates load MathJax from a CDN to do this in the browser: no longer needed.
  for (const script of adaptor.tags(root, "script")) {
    const src = adaptor.getAttribute(script, "src") || "";
    const type = adaptor.getAttribute(script, "type") || "";
    const text = adaptor.textContent(script);
    if (/mathjax/i.test(src) || type === "text/x-mathjax-config" || /MathJax\.Hub/.test(text)) {
      adaptor.remove(script);
    }
  }
  // What nbconvert's HTMLExporter leaves to a second parse of the page (feedback_pages.py).
  for (const img of adaptor.tags(root, "img")) {
    if (!adaptor.hasAttribute(img, "alt")) adaptor.setAttribute(img, "alt", NO_ALT);
  }
  const head = adaptor.head(doc.document);
  adaptor.append(head, adaptor.node("style", { id: "autograder-readable" }, [adaptor.text(READABLE + css)]));
  const html = adaptor.tags(root, "html")[0] || root;
  if (lang && !adaptor.getAttribute(html, "lang")) adaptor.setAttribute(html, "lang", lang);
  if (Array.from(doc.math).length === 0) {
    adaptor.remove(doc.outputJax.svgStyles);
    const cache = adaptor.elementById(adaptor.body(doc.document), "MJX-SVG-global-cache");
    if (cache) adaptor.remove(cache);
  }
  const doctype = adaptor.doctype(doc.document) || "<!DOCTYPE html>";
  return doctype + "\n" + adaptor.outerHTML(root) + "\n";
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let reply;
  try {
    reply = { html: typeset(JSON.parse(line)) };
  } catch (error) {
    reply = { error: String(error && error.message ? error.message : error).slice(0, 500) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}

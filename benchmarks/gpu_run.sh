#!/usr/bin/env bash
# Re-execute every notebook on a CUDA GPU, run the `gpu` tests and the speed chapter's full
# sweep, and keep what the run shows in one folder. Prepared on the CPU (`make gpu-kit`,
# `make gpu-dry-run`) because a GPU machine is lent for minutes and reaches no registry.
#
#   benchmarks/gpu_run.sh OUT_DIR
#
# Run from anywhere; it works on the repository it lives in. Environment:
#   PYTHON        the interpreter that has torch (default python3)
#   GPU_KIT       folder of wheels from `make gpu-kit` (default .gpu-kit); "none" uses the
#                 interpreter's own packages (the project's .venv, say)
#   GPU_RUN_CPU=1 allow a run without CUDA (the dry run); otherwise no GPU is an error
#   GPU_RUN_NOTEBOOKS  the notebooks nbval re-executes (default: all twelve, sources and
#                 release); tests/test_gpu_kit.py's dry run names one pair, since the CPU
#                 suite's own nbval runs all twelve with the same sanitiser and plugins
#   GPU_RUN_SWEEP the speed chapter's sweep (default full); the dry run takes "quick": the
#                 same code on fewer sizes, since a full sweep on two CPU cores times the
#                 CPU for about 40 s and proves nothing more about the script
#
# OUT_DIR receives at most eight files (what the device tool brings back): summary.txt (one
# line per notebook and per step), device.txt, nbval.log, gpu-tests.log, speed.log, the
# speed chapter as executed, and the speed/<device>-full-<date>.json files it wrote.
# Exit status: 0 when every step passed.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(mkdir -p "${1:?usage: benchmarks/gpu_run.sh OUT_DIR}" && cd "$1" && pwd)
PY=${PYTHON:-python3}
KIT=${GPU_KIT:-$REPO/.gpu-kit}
SCRATCH=$(mktemp -d /tmp/gpu-run.XXXXXX)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
cd "$REPO" || exit 2

note() { echo "$*" | tee -a "$SUMMARY"; }
# step NAME LOG COMMAND...: run one step with its output in LOG; one summary line either way.
failed=0
step() {
	local name=$1 log=$2 start rc
	shift 2
	start=$(date +%s)
	"$@" >"$log" 2>&1
	rc=$?
	note "$( ((rc == 0)) && echo PASS || echo FAIL) $name ($(($(date +%s) - start)) s, log $(basename "$log"))"
	((rc == 0)) || failed=1
	return $rc
}

# 1. The kit, into a scratch folder that shadows nothing of the machine's but what it adds.
if [[ $KIT != none ]]; then
	ls "$KIT"/*.whl >/dev/null 2>&1 || {
		note "FAIL no wheels in $KIT: run 'make gpu-kit' first"
		exit 2
	}
	"$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
		--target "$SCRATCH/site" "$KIT"/*.whl >"$SCRATCH/install.log" 2>&1 || {
		cat "$SCRATCH/install.log" >"$OUT/device.txt"
		note "FAIL installing the kit (see device.txt)"
		exit 2
	}
	export PYTHONPATH=$SCRATCH/site:$REPO
else
	export PYTHONPATH=$REPO
fi
# A fresh machine has no matplotlib font cache. The first kernel to draw would build it and
# print "Matplotlib is building the font cache" into a figure cell's outputs, which nbval
# rightly calls a difference; so the cache lives in the scratch folder and is built below,
# before any notebook runs (the dry run thus starts as bare as the GPU machine).
export PYTHONUNBUFFERED=1 MPLCONFIGDIR=$SCRATCH/matplotlib

# 2. The device, and the versions that differ from the CPU suite's pins.
{
	date -u +"%Y-%m-%d %H:%M UTC"
	nvidia-smi 2>&1 || echo "nvidia-smi: not available"
	"$PY" - <<'EOF'
import platform, sys
import IPython, matplotlib, nbval, numpy, torch
import matplotlib.font_manager  # builds the font cache (see MPLCONFIGDIR above)
print("python", platform.python_version(), sys.executable)
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("numpy", numpy.__version__, "matplotlib", matplotlib.__version__,
      "IPython", IPython.__version__, "nbval", nbval.__version__)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
          f"compute capability {p.major}.{p.minor}")
else:
    print("device: no CUDA device, CPU only")
EOF
} >"$OUT/device.txt" 2>&1 || {
	note "FAIL the kit does not import (see device.txt)"
	exit 2
}
note "$(grep '^device:' "$OUT/device.txt")"
if grep -q '^device: no CUDA' "$OUT/device.txt" && [[ ${GPU_RUN_CPU:-0} != 1 ]]; then
	note "FAIL torch sees no CUDA device (set GPU_RUN_CPU=1 for a dry run on the CPU)"
	exit 2
fi

# 3. nbval: all twelve notebooks, the sources with their stored outputs and the student
# release, four at a time. The sanitiser is the CPU suite's: only the device name differs.
# tests/nbval_figures.py compares a stored SVG figure only where this matplotlib drew it.
# Only the plugins named here: a GPU image brings its own (pytest-benchmark, for one, warns
# under xdist, and the project's filterwarnings = error makes that fatal).
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-p xdist.plugin -n 4 --dist loadfile)
# shellcheck disable=SC2206 # the list is globs and paths, split on spaces on purpose
NOTEBOOKS=(${GPU_RUN_NOTEBOOKS:-solutions/channels chapters/channels})
step "nbval, ${GPU_RUN_NOTEBOOKS:-12 notebooks}" "$OUT/nbval.log" \
	"$PY" -m pytest -p no:cacheprovider -p nbval.plugin -p tests.nbval_figures "${XDIST[@]}" \
	--nbval --nbval-current-env \
	--nbval-sanitize-with tests/nbval_sanitize.cfg --junitxml "$SCRATCH/nbval.xml" \
	"${NOTEBOOKS[@]}"
grep -m 1 "^nbval_figures:" "$OUT/nbval.log" | tee -a "$SUMMARY"
"$PY" benchmarks/gpu_summary.py "$SCRATCH/nbval.xml" | tee -a "$SUMMARY"

# 4. The `gpu`-marked tests. They need torch and the autograder package only, so tests/
# conftest.py (which imports nbgrader's stack, not in the kit) is left out.
gpu_files=$(grep -rl --include='test_*.py' 'mark\.gpu' tests | sort)
# shellcheck disable=SC2086 # one argument per file
step "gpu-marked tests" "$OUT/gpu-tests.log" \
	"$PY" -m pytest -p no:cacheprovider --noconftest -m gpu -rA $gpu_files
tail -n 1 "$OUT/gpu-tests.log" | tee -a "$SUMMARY"

# 5. The speed chapter's full sweep, saved. On a copy, so that the repository's own speed/
# folder changes only when someone commits the new file.
cp -r solutions/channels "$SCRATCH/channels"
rm -rf "$SCRATCH/channels/speed"
SWEEP=${GPU_RUN_SWEEP:-full}
SPEED_SAVE=1 SPEED_SWEEP=$SWEEP step "speed chapter, $SWEEP sweep" "$OUT/speed.log" \
	"$PY" -m autograder execute "$SCRATCH/channels/06-how-fast.ipynb"
cp "$SCRATCH/channels/06-how-fast.ipynb" "$OUT/" 2>/dev/null
for run in "$SCRATCH"/channels/speed/*.json; do
	[[ -e $run ]] || continue
	cp "$run" "$OUT/"
	note "wrote $(basename "$run")"
done

note "$( ((failed == 0)) && echo "ALL PASSED" || echo "SOME STEPS FAILED") in $SECONDS s"
rm -rf "$SCRATCH"
exit $failed

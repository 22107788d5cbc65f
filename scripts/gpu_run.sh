#!/usr/bin/env bash
# Every GPU measurement convlab wants, in one unattended script for a borrowed, offline GPU machine:
#
#   bash scripts/gpu_prepare.sh                      # first, here: wheels + data into .gpu/
#   bash scripts/gpu_run.sh OUT_DIR                  # there, with .gpu/ carried along
#   bash scripts/gpu_run.sh OUT_DIR --dry-run        # here, on the CPU: the same commands, tiny
#   bash scripts/gpu_run.sh OUT_DIR --steps 2,3      # only some steps (a re-run after a failure)
#
# Steps, in priority order (a step that fails or runs out of time is recorded and the next runs):
#   1  experiment=resnet18_tuned trainer=gpu: time to >= 0.94 test accuracy
#   2  scripts/bench_gpu.py: images/s in fp32, bf16 + channels_last, and + torch.compile
#   3  vgg_tuned, then resnet18_book, vgg_book, alexnet_book, nin_book, resnet18_notes, vgg_notes,
#      while step 3's time lasts
#   4  trainer=ddp trainer.devices=1: a short DDP run
# Each step has a time cap (CAP1..CAP4 seconds, from the environment; the defaults sum to 360 s).
#
# OUT_DIR gets five files, since the GPU machine sends back only a few: summary.md, status.tsv,
# results.json (every run's metrics.json and the bench figures), runs.tar.gz (logs, configs, records)
# and events.tar.gz (TensorBoard). The run directories themselves, checkpoints included, are made
# in RUNS (from the environment; default a new folder in /tmp).
#
# --dry-run runs exactly the same command lines on the CPU with synthetic data and a few batches:
# it only appends overrides (and swaps data.system_dir for data=synthetic, which has no such key).
set -euo pipefail

usage="usage: scripts/gpu_run.sh OUT_DIR [--dry-run] [--steps 1,2,3,4]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
OUT=$1
shift
DRY=false STEPS=1,2,3,4
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY=true ;;
    --steps) STEPS=${2:?$usage}; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ ! -e "$OUT/status.tsv" ] || { echo "gpu_run: $OUT holds an earlier run's results; name a new OUT_DIR" >&2; exit 2; }
RUNS=${RUNS:-$(mktemp -d "${TMPDIR:-/tmp}/convlab-gpu.XXXXXX")}
mkdir -p "$RUNS/logs" "$RUNS/bench"
RUNS=$(cd "$RUNS" && pwd)
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-$(command -v python3 || command -v python)}   # the GPU machine's torch is python3's
# the dry run has no caps to speak of: it must reach every command, on however slow a CPU
if $DRY; then caps=(600 600 600 600); else caps=(150 90 90 30); fi
CAP1=${CAP1:-${caps[0]}} CAP2=${CAP2:-${caps[1]}} CAP3=${CAP3:-${caps[2]}} CAP4=${CAP4:-${caps[3]}}
MIN_LEFT=15   # a run given less than this cannot even start Python, Lightning and CUDA: skip it

if $DRY; then
  DATA=(data=synthetic)
  BENCH_DATA=()
  # trainer=gpu's GPU, bf16 and compile undone for the CPU (inductor there takes minutes, bf16 is
  # slow); batches of 2, since VGG at 224 pixels costs about a second a step on a small CPU
  TINY=(trainer.accelerator=cpu trainer.precision=32-true module.compile=false trainer.max_epochs=1
        trainer.limit_train_batches=2 trainer.limit_val_batches=2 trainer.limit_test_batches=2
        callbacks.dashboards=null data.batch_size=2 data.eval_batch_size=2)
  BENCH_TINY=(--device cpu --data synthetic --batches 1 --warmup 0 --repeats 1 --batch-size 2)
  BENCH_TINY_OVERRIDES=(module.compile=false trainer.precision=32-true)
else
  [ -f .gpu/data/train-images-idx3-ubyte.gz ] || { echo "gpu_run: no .gpu/data: run scripts/gpu_prepare.sh and carry .gpu" >&2; exit 1; }
  DATA=(data.system_dir="$REPO/.gpu/data")
  BENCH_DATA=(data.system_dir="$REPO/.gpu/data")
  TINY=() BENCH_TINY=() BENCH_TINY_OVERRIDES=()
  # Hydra and OmegaConf into a private folder, never over the machine's torch; offline, from .gpu/
  if ! "$PY" -c "import hydra, omegaconf" 2>/dev/null; then
    SITE=/tmp/convlab-site
    "$PY" -m pip install --quiet --no-deps --no-index --no-compile --no-cache-dir --target "$SITE" \
      .gpu/wheels/*.whl \
      || for w in .gpu/wheels/*.whl; do "$PY" -m zipfile -e "$w" "$SITE"; done  # pure-Python wheels are zips
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"   # convlab from this tree, installed or not
# one line that says whether anything can run at all (a broken install would fail every step alike)
"$PY" -c "import torch, lightning, hydra, convlab.train
print('torch', torch.__version__, '| lightning', lightning.__version__, '| hydra', hydra.__version__,
      '| cuda:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"

STATUS=$OUT/status.tsv
printf 'step\tname\tstatus\twall_s\tresult\n' > "$STATUS"
deadline=0
# group CAP: the runs that follow share CAP seconds (each gets what the ones before left)
group() { deadline=$(($(date +%s) + $1)); }
# job STEP NAME RESULT CMD...: runs CMD under the group's time left; records status and wall time.
job() {
  local step=$1 name=$2 result=$3 left status rc start
  shift 3
  case ",$STEPS," in *",${step:0:1},"*) ;; *) return 0 ;; esac
  left=$((deadline - $(date +%s)))
  if [ "$left" -lt "$MIN_LEFT" ]; then
    printf '%s\t%s\tskipped (no time left)\t0\t%s\n' "$step" "$name" "$result" >> "$STATUS"
    echo "[$step $name] skipped: ${left}s left"
    return 0
  fi
  echo "[$step $name] up to ${left}s: $*"
  start=$(date +%s.%N)
  # SIGTERM first, so a run stops with its checkpoint and events; KILL 5 s later if it hangs
  rc=0
  timeout --kill-after=5 "$left" "$@" > "$RUNS/logs/$step-$name.log" 2>&1 || rc=$?
  case $rc in 0) status=ok ;; 124 | 137) status="timed out (${left}s)" ;; *) status="failed (exit $rc)" ;; esac
  printf '%s\t%s\t%s\t%s\t%s\n' "$step" "$name" "$status" \
    "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" "$result" >> "$STATUS"
  echo "[$step $name] $status"
  [ "$rc" = 0 ] || tail -n 15 "$RUNS/logs/$step-$name.log" | sed 's/^/    /'
}
# train STEP NAME OVERRIDES...: python train.py into RUNS/NAME (a progress bar would fill the log)
train() {
  local step=$1 name=$2
  shift 2
  job "$step" "$name" "$name" "$PY" train.py "$@" "${DATA[@]}" hydra.run.dir="$RUNS/$name" \
    trainer.enable_progress_bar=false "${TINY[@]}"
}
# bench STEP NAME CASES VARIANT OVERRIDES...: one bench_gpu.py call, into RUNS/bench/NAME.json
bench() {
  local step=$1 name=$2 cases=$3 variant=$4
  shift 4
  # shellcheck disable=SC2086  # CASES is a list of words on purpose
  job "$step" "$name" "bench/$name.json" "$PY" scripts/bench_gpu.py --cases $cases \
    --variants "$variant" --batches 30 --warmup 5 --repeats 2 --json "$RUNS/bench/$name.json" \
    --overrides "${BENCH_DATA[@]}" "$@" "${BENCH_TINY_OVERRIDES[@]}" "${BENCH_TINY[@]}"
}

echo "out: $OUT | runs: $RUNS | dry run: $DRY | steps: $STEPS | caps: $CAP1 $CAP2 $CAP3 $CAP4 s"

group "$CAP1"
train 1 resnet18_tuned experiment=resnet18_tuned trainer=gpu

# bench_gpu.py writes its JSON only at the end, so each variant gets its own call (a call cut short
# by the cap loses only itself); the explicit keys repeat what each variant means. The
# compile calls go one case at a time, so a call cut short by the cap still leaves the ones before:
# LeNet first (cheap), VGG next (the shapes of step 3's VGG runs, which may then find its kernels
# in inductor's cache), ResNet-18 last (step 1's epoch times already give its compile time).
ALL_CASES="lenet_modern:28 vgg_small:224 resnet18:96"
group "$CAP2"
bench 2a fp32 "$ALL_CASES" base module.channels_last=false module.compile=false
bench 2b bf16_cl "$ALL_CASES" bf16+cl module.compile=false
bench 2c bf16_cl_compile_lenet_modern lenet_modern:28 bf16+cl+compile module.compile=true
bench 2d bf16_cl_compile_vgg_small vgg_small:224 bf16+cl+compile module.compile=true
bench 2e bf16_cl_compile_resnet18 resnet18:96 bf16+cl+compile module.compile=true

group "$CAP3"
for name in 3a:vgg_tuned 3b:resnet18_book 3c:vgg_book 3d:alexnet_book 3e:nin_book 3f:resnet18_notes \
    3g:vgg_notes; do
  train "${name%%:*}" "${name#*:}" experiment="${name#*:}" trainer=gpu
done

# compile off: a smoke test of the DDP path must fit in its 30 s, and compiling would take much of it
group "$CAP4"
train 4 ddp trainer=ddp trainer.devices=1 trainer.max_epochs=1 trainer.limit_train_batches=20 \
  model=lenet_modern module.compile=false

# summary.md: one row per run from status.tsv and each run's metrics.json (and TensorBoard events
# for the epoch times, which metrics.json does not keep), the bench tables, the machine; and
# results.json: those records and figures in one file
"$PY" - "$OUT" "$RUNS" "$DRY" <<'EOF'
import csv, datetime, json, statistics, subprocess, sys
from pathlib import Path

out, runs, dry = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "true"
repo = Path.cwd()


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def epoch_times(run_dir):
    """(seconds of epoch 0, median seconds of the later epochs, epochs done, last val/acc) from the
    events: epoch 0 runs from the logger's first event (fit start) to its val/acc, so its excess
    over a later epoch is torch.compile's time plus cuDNN autotuning and other warm-up."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
        events.Reload()
        val = events.Scalars("val/acc")
        start = events.FirstEventTimestamp()
    except Exception:  # no events (the run never started) or no tensorboard
        return None, None, 0, None
    if not val:
        return None, None, 0, None
    stamps = [start] + [e.wall_time for e in val]
    laps = [b - a for a, b in zip(stamps, stamps[1:])]
    later = statistics.median(laps[1:]) if len(laps) > 1 else None
    return laps[0], later, len(val), val[-1].value


def fmt(x, spec=".1f"):
    return "" if x is None else format(x, spec)


rows = list(csv.DictReader((out / "status.tsv").open(), delimiter="\t"))
records = {}
lines = [
    "| step | run | status | wall s | test acc | epochs | fit s | first epoch s | later epochs s | "
    "compile + warm-up s |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
]
for r in rows:
    if r["result"].startswith("bench/"):
        ok = (runs / r["result"]).is_file()
        lines.append(f"| {r['step']} | bench_gpu {r['name']} | {r['status']} | {r['wall_s']} | "
                     f"{'(img/s below)' if ok else ''} | | | | | |")
        continue
    run = runs / r["result"]
    record = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file() else {}
    records[r["name"]] = record
    first, later, done, last_val = epoch_times(run)
    acc = record.get("metrics", {}).get("test/acc")
    acc = fmt(acc, ".4f") if acc is not None else (f"(val {last_val:.4f})" if last_val is not None else "")
    warm = first - later if first is not None and later is not None else None
    lines.append(
        f"| {r['step']} | {r['name']} | {r['status']} | {r['wall_s']} | {acc} | "
        f"{record.get('epochs_run', done)} | {fmt(record.get('timing', {}).get('fit_s'))} | "
        f"{fmt(first)} | {fmt(later)} | {fmt(warm)} |"
    )

bench = []
for path in sorted((runs / "bench").glob("*.json")):
    saved = json.loads(path.read_text())
    bench += [{**b, "batch": saved["args"]["batch_size"]} for b in saved["rows"]]
fp32 = {(b["model"], b["resize"]): b["img_s"] for b in bench if b["variant"] == "base"}
bench_lines = [
    "| model | resize | batch | variant | img/s | x fp32 | data-free img/s | GPU waits for data % |",
    "|---|---:|---:|---|---:|---:|---:|---:|",
]
for b in sorted(bench, key=lambda b: (b["model"], b["resize"], len(b["variant"]))):
    base = fp32.get((b["model"], b["resize"]))
    variant = "fp32" if b["variant"] == "base" else b["variant"]
    bench_lines.append(
        f"| {b['model']} | {b['resize']} | {b['batch']} | {variant} | {b['img_s']:,.0f} | "
        f"{fmt(b['img_s'] / base if base else None, '.2f')} | {b['data_free_img_s']:,.0f} | "
        f"{b['waits_for_data_pct']:.1f} |"
    )

commit = sh("git", "-C", str(repo), "rev-parse", "HEAD")
if commit is None and (repo / ".gpu" / "commit").is_file():
    commit = " ".join((repo / ".gpu" / "commit").read_text().split()) + " (from .gpu/commit)"
gpu = sh("nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader")
text = "\n".join([
    "# GPU runs" + (" (CPU dry run: tiny, synthetic data; no figure means anything)" if dry else ""),
    "",
    f"- GPU: {gpu or 'none'}",
    f"- commit: {commit or 'unknown'}",
    f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
    "- wall s: the whole process (start-up included: time to accuracy); fit s: training alone;",
    "  first epoch s minus the median later epoch = torch.compile + autotuning + warm-up;",
    "  a run stopped by its cap shows the last val acc its events hold, in brackets",
    "",
    *lines,
    "",
    "bench_gpu.py (steady-state training steps; x fp32: over the same model's fp32 row):",
    "",
    *(bench_lines if bench else ["(no bench figures)"]),
    "",
])
(out / "summary.md").write_text(text)
results = {"status": rows, "runs": records, "bench": bench, "gpu": gpu, "commit": commit,
           "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "dry_run": dry}
(out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
print(text)
EOF

# the rest of each run, without checkpoints (hundreds of MB for VGG and AlexNet): text in one file,
# TensorBoard's events (pictures, so maybe large) in another, so a large one costs only itself
tar -czf "$OUT/runs.tar.gz" -C "$RUNS" --exclude=checkpoints --exclude='events.out.tfevents.*' .
(cd "$RUNS" && find . -name 'events.out.tfevents.*' | tar -czf "$OUT/events.tar.gz" -T -)
ls -l "$OUT"

# a non-zero exit when any step did not succeed, for callers that only look at the exit code
awk -F'\t' 'NR > 1 && $3 != "ok" { bad = 1 } END { exit bad }' "$STATUS"

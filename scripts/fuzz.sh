#!/bin/sh
# Fuzzes moesim's parsers with libFuzzer: builds the harnesses of tests/fuzz/
# with clang and the address and undefined-behaviour sanitizers in their own
# build directory, then runs each harness for SECONDS (default 60) from a
# seed corpus of the shipped presets, configs, traces and the bad-input
# catalogue.  Ends with one line per harness (executions, corpus size,
# crashes) and exits 1 if any harness found a crash, leak, timeout or
# out-of-memory input; those inputs are left in build-fuzz/fuzz/artifacts/.
#
#   scripts/fuzz.sh [SECONDS]     SECONDS = 0 runs each corpus once (a quick
#                                 regression check, no fuzzing)
#   MSIM_FUZZ_BUILD=dir           build directory (default build-fuzz)
#   MSIM_FUZZ_TARGETS="ini flows" run only these harnesses
#
# Installs clang and libclang-rt-14-dev (libFuzzer) with apt-get when they are
# missing, besides what scripts/install-deps.sh installs.  See
# tests/fuzz/README.md for the harnesses and how to minimise a crash.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
SECS=${1:-60}
BUILD=${MSIM_FUZZ_BUILD:-build-fuzz}
ALL_TARGETS="ini run-config topology trace-npy trace-csv trace-json trace-mtr flows placement"
TARGETS=${MSIM_FUZZ_TARGETS:-$ALL_TARGETS}

case "$SECS" in
  ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

./scripts/install-deps.sh || exit 2
missing=""
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "fuzz: installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing >&2 || exit 2
fi

# 1. The libraries, instrumented for coverage (fuzzer-no-link) and with the
#    sanitizers and the debug-build invariant checks.
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
if [ ! -d "$BUILD" ]; then
  CC=clang meson setup "$BUILD" -Dtests=false --buildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false \
    "-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all -DMSIM_DEBUG_CHECKS=1" \
    >"$BUILD.setup.log" 2>&1 || { cat "$BUILD.setup.log"; exit 2; }
  rm -f "$BUILD.setup.log"
fi
meson compile -C "$BUILD" >"$BUILD/compile.log" 2>&1 || { tail -30 "$BUILD/compile.log"; exit 2; }

# 2. The harnesses.
PKGS="glib-2.0 gmodule-2.0 igraph gsl json-glib-1.0"
LIBS=$(find "$BUILD" -name 'libmsim-*.a' | sort | tr '\n' ' ')
CFLAGS="-g -O1 -fsanitize=fuzzer $SAN -D_GNU_SOURCE -DMSIM_DEBUG_CHECKS=1 \
-DG_LOG_DOMAIN=\"moesim\" -DFUZZ_DATA_DIR=\"$ROOT\" \
-Imodels -Itopology -Iworkloads -Ianalysis -Isim -Isim/cli $(pkg-config --cflags $PKGS)"
LDLIBS="-Wl,--start-group $LIBS -Wl,--end-group $(pkg-config --libs $PKGS) -lglpk -lm"
mkdir -p "$BUILD/fuzz/artifacts"
build () {
  # shellcheck disable=SC2086
  clang $CFLAGS "$@" $LDLIBS || exit 2
}
for t in $TARGETS; do
  case "$t" in
    trace-npy) build -DFUZZ_FORMAT=MSIM_TRACE_FORMAT_NPY tests/fuzz/fuzz-trace.c -o "$BUILD/fuzz/$t" ;;
    trace-csv) build -DFUZZ_FORMAT=MSIM_TRACE_FORMAT_CSV tests/fuzz/fuzz-trace.c -o "$BUILD/fuzz/$t" ;;
    trace-json) build -DFUZZ_FORMAT=MSIM_TRACE_FORMAT_JSON tests/fuzz/fuzz-trace.c -o "$BUILD/fuzz/$t" ;;
    trace-mtr) build -DFUZZ_FORMAT=MSIM_TRACE_FORMAT_NATIVE tests/fuzz/fuzz-trace.c -o "$BUILD/fuzz/$t" ;;
    ini|run-config|topology|flows|placement) build "tests/fuzz/fuzz-$t.c" -o "$BUILD/fuzz/$t" ;;
    *) echo "fuzz: unknown target '$t' (known: $ALL_TARGETS)" >&2; exit 2 ;;
  esac
done

# 3. Seed corpora: the committed seeds plus the shipped inputs of each kind.
#    Inputs the fuzzer finds accumulate in the corpus directories.
seed () {
  dir="$BUILD/fuzz/corpus/$1"
  shift
  mkdir -p "$dir"
  for f in "$@"; do
    [ -f "$f" ] && cp "$f" "$dir/seed-$(echo "$f" | tr '/' '_')"
  done
}
B=tests/e2e/bad-input
seed ini configs/*.ini models/presets/*.ini topology/presets/*.ini $B/run/*.ini tests/fuzz/corpus/run-config/*.ini
seed run-config tests/fuzz/corpus/run-config/*.ini configs/*.ini
seed topology topology/presets/*.ini $B/topo/*.ini
seed trace-npy $B/trace/*.npy tests/workloads/data/npy/*.npy tests/fuzz/corpus/trace/*.npy
seed trace-csv $B/trace/*.csv tests/fuzz/corpus/trace/*.csv
seed trace-json $B/trace/*.json tests/fuzz/corpus/trace/*.json
seed trace-mtr $B/trace/*.mtr tests/fuzz/corpus/trace/*.mtr
# The flows harness reads a mode byte (model and routing) before the CSV.
mkdir -p "$BUILD/fuzz/corpus/flows"
for f in $B/flows/*.csv tests/fuzz/corpus/flows/*.csv; do
  [ -f "$f" ] || continue
  for m in 0 1 2 3; do
    { printf '%s' "$m"; cat "$f"; } >"$BUILD/fuzz/corpus/flows/seed-$m-$(basename "$f")"
  done
done

# The placement harness reads a mode byte (imposed dimensions) first.
mkdir -p "$BUILD/fuzz/corpus/placement"
for f in tests/fuzz/corpus/placement/*.csv; do
  [ -f "$f" ] || continue
  for m in 0 1 2; do
    { printf '%s' "$m"; cat "$f"; } >"$BUILD/fuzz/corpus/placement/seed-$m-$(basename "$f")"
  done
done

# Minimised inputs of past findings (tests/fuzz/regressions/TARGET-*), as
# they are: they run first, so a finding that comes back fails at once.
for f in tests/fuzz/regressions/*; do
  [ -f "$f" ] || continue
  for t in $ALL_TARGETS; do
    case "$(basename "$f")" in
      "$t"-*) mkdir -p "$BUILD/fuzz/corpus/$t" && cp "$f" "$BUILD/fuzz/corpus/$t/" ;;
    esac
  done
done

# 4. Run.
export MOESIM_DATA_DIR="$ROOT"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=""
failed=0
for t in $TARGETS; do
  case "$t" in
    trace-*) dict="" ; maxlen=65536 ;;
    *) dict="-dict=tests/fuzz/ini.dict" ; maxlen=8192 ;;
  esac
  [ "$t" = flows ] && dict="-dict=tests/fuzz/flows.dict"
  [ "$t" = trace-json ] && dict="-dict=tests/fuzz/trace-json.dict"
  [ "$t" = trace-csv ] && dict="-dict=tests/fuzz/flows.dict"
  [ "$t" = placement ] && dict="-dict=tests/fuzz/flows.dict"
  if [ "$SECS" -eq 0 ]; then limit="-runs=0"; else limit="-max_total_time=$SECS"; fi
  log="$BUILD/fuzz/$t.log"
  rm -f "$BUILD/fuzz/artifacts/$t-"*
  echo "fuzz: $t ($SECS s)" >&2
  # shellcheck disable=SC2086
  "$BUILD/fuzz/$t" $limit $dict -max_len=$maxlen -timeout=30 -rss_limit_mb=2048 \
    -report_slow_units=60 \
    -print_final_stats=1 -artifact_prefix="$BUILD/fuzz/artifacts/$t-" \
    "$BUILD/fuzz/corpus/$t" >"$log" 2>&1
  status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  corpus=$(find "$BUILD/fuzz/corpus/$t" -type f | wc -l)
  crashes=$(find "$BUILD/fuzz/artifacts" -name "$t-*" ! -name "$t-slow-unit-*" -type f | wc -l)
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    echo "fuzz: $t FAILED (status $status); log $log:" >&2
    grep -E 'ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x|abort|Test unit written' "$log" | head -40 >&2
  fi
  summary="$summary$(printf '%-11s %12s executions, corpus %5d, crashes %d' "$t" "${execs:-?}" "$corpus" "$crashes")
"
done
printf '%s' "$summary"
exit $failed

#!/bin/sh
# Installs what moesim needs, builds it, and runs the whole test suite three
# ways: a normal build (warnings are errors), an address+undefined sanitizer
# build, and the normal build under valgrind memcheck; then a 2-rank MPI
# sweep, cppcheck and a bounded libFuzzer run.  Ends with one line
# "N passed, N failed" (totals over all of them) and a non-zero status if
# anything failed.
#
#   MSIM_SKIP_VALGRIND=1  skip the valgrind run (it is the slow one)
#   MSIM_SKIP_ASAN=1      skip the sanitizer build
#   MSIM_SKIP_MPI=1       skip the 2-rank mpirun sweep check
#   MSIM_SKIP_FUZZ=1      skip the bounded fuzzing run (MSIM_FUZZ_SECONDS per harness)
set -u
cd "$(dirname "$0")/.." || exit 2
# The test command installs the optional SimGrid too: the suite "simgrid"
# cross-checks the flow model against it (tests/simgrid/README.md).
MSIM_WITH_SIMGRID=1 ./scripts/install-deps.sh \
  || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 2; }

total_pass=0
total_fail=0

# Counts results in a meson test log (JSON lines, one per test).
count () {
  log="$1"
  if [ -f "$log" ]; then
    p=$(grep -o '"result": "[A-Z]*"' "$log" | grep -c '"OK"\|"EXPECTEDFAIL"')
    f=$(grep -o '"result": "[A-Z]*"' "$log" | grep -vc '"OK"\|"EXPECTEDFAIL"\|"SKIP"')
  else
    p=0
    f=1
  fi
  echo "$2: $p passed, $f failed"
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
}

setup () {
  dir="$1"
  shift
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
}

# 1. Normal build, warnings as errors.
if setup build-test --buildtype=debugoptimized -Dwerror=true && meson compile -C build-test; then
  meson test -C build-test --print-errorlogs --num-processes 2
else
  rm -f build-test/meson-logs/testlog.json
fi
count build-test/meson-logs/testlog.json "build"

# 2. Address and undefined-behaviour sanitizers; UB aborts instead of
#    printing and carrying on.
if [ -z "${MSIM_SKIP_ASAN:-}" ]; then
  if setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
       -Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all \
     && meson compile -C build-asan; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      meson test -C build-asan --print-errorlogs --num-processes 2
  else
    rm -f build-asan/meson-logs/testlog.json
  fi
  count build-asan/meson-logs/testlog.json "address+undefined sanitizers"
fi

# 3. Valgrind memcheck on the normal build (CK_FORK=no, see tests/meson.build).
if [ -z "${MSIM_SKIP_VALGRIND:-}" ]; then
  rm -f build-test/meson-logs/testlog-valgrind.json
  meson test -C build-test --setup valgrind --print-errorlogs --num-processes 2
  count build-test/meson-logs/testlog-valgrind.json "valgrind"
fi

# 4. MPI: the example sweep under `mpirun -n 2` must merge to exactly the
#    single-process results.
if [ -z "${MSIM_SKIP_MPI:-}" ]; then
  mp=0
  mf=1
  if setup build-mpi --buildtype=release -Dmpi=enabled -Dtests=false \
     && meson compile -C build-mpi moesim; then
    rm -rf build-mpi/sweep-1 build-mpi/sweep-2
    if ./build-mpi/sim/moesim sweep configs/sweep-example.ini -o build-mpi/sweep-1 -j 2 \
       && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
          mpirun --oversubscribe -n 2 ./build-mpi/sim/moesim sweep configs/sweep-example.ini \
            -o build-mpi/sweep-2 -j 1 \
       && cmp build-mpi/sweep-1/points.csv build-mpi/sweep-2/points.csv \
       && cmp build-mpi/sweep-1/points.jsonl build-mpi/sweep-2/points.jsonl; then
      mp=1
      mf=0
    fi
  fi
  echo "mpi sweep (2 ranks = 1 process): $mp passed, $mf failed"
  total_pass=$((total_pass + mp))
  total_fail=$((total_fail + mf))
fi

# 5. Static analysis with the documented cppcheck profile.
if ./scripts/lint.sh; then lp=1; lf=0; else lp=0; lf=1; fi
echo "lint: $lp passed, $lf failed"
total_pass=$((total_pass + lp))
total_fail=$((total_fail + lf))

# 6. Fuzzing, bounded: each libFuzzer harness for MSIM_FUZZ_SECONDS
#    (default 20 s in CI) from its seed corpus and the regressions.
if [ -z "${MSIM_SKIP_FUZZ:-}" ]; then
  if ./scripts/fuzz.sh "${MSIM_FUZZ_SECONDS:-20}"; then fp=1; ff=0; else fp=0; ff=1; fi
  echo "fuzz: $fp passed, $ff failed"
  total_pass=$((total_pass + fp))
  total_fail=$((total_fail + ff))
fi

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]

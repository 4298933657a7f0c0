#!/usr/bin/env bash
# CI leg: weft on Debian 13 (trixie), whose compilers and Catch2 are newer than the host's
# Debian 12: GCC 14 (trixie's default g++), clang 19 and Catch2 3.
#
#   1. debootstrap a fresh minimal trixie into a temporary directory (nothing is cached: every
#      run starts from an empty one, as on a fresh CI machine);
#   2. install the toolchain and libraries inside it with apt-get;
#   3. bind-mount this source tree read-only at /src;
#   4. g++ 14, Release, no benchmarks, no sanitizers: build everything else and run ctest;
#   5. clang 19, Release: build the tests too (and run them unless WEFT_TRIXIE_CLANG_TESTS=0).
#
# Needs root (debootstrap, chroot, mount). The mounts are undone and the directory removed on
# any exit (WEFT_TRIXIE_KEEP=1 keeps the directory, unmounted, to look into). Any failure exits
# non-zero with a line starting "FAILED: trixie:". Called by .ci/run; can be run on its own:
#   bash .ci/trixie.sh
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${WEFT_TRIXIE_JOBS:-2}
clang_tests=${WEFT_TRIXIE_CLANG_TESTS:-1}
start_seconds=$SECONDS

fail() {
    echo "FAILED: trixie: $*" >&2
    exit 1
}
step() {
    echo
    echo "--> trixie ($((SECONDS - start_seconds))s): $*"
}

[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot and mount)"
if ! command -v debootstrap >/dev/null; then
    step "installing debootstrap on the host"
    apt-get update
    env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/weft-trixie.XXXXXX")
chmod 755 "${root}" # apt in the chroot downloads as user _apt

# Stops what still runs in the chroot, unmounts everything under ${root}, deepest first, and
# removes ${root} only when nothing is mounted there any more, so the source tree bound at /src
# can never be deleted through it.
cleanup() {
    local status=$? mounts p
    # Processes still running inside the chroot (a build that was stopped) keep its mounts busy.
    for p in /proc/[0-9]*; do
        if [ "$(readlink "${p}/root" 2>/dev/null)" = "${root}" ]; then
            kill -9 "${p##*/}" 2>/dev/null || true
        fi
    done
    mounts=$(findmnt -rn -o TARGET | grep -F "${root}/" | sort -r || true)
    for m in ${mounts}; do
        umount "${m}" 2>/dev/null || umount -l "${m}" || true
    done
    if findmnt -rn -o TARGET | grep -qF "${root}/"; then
        echo "trixie: still mounted under ${root}; not removing it" >&2
    elif [ "${WEFT_TRIXIE_KEEP:-0}" = 1 ]; then
        echo "trixie: chroot kept in ${root}"
    else
        rm -rf "${root}"
    fi
    echo "trixie: finished with status ${status} after $((SECONDS - start_seconds))s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that cleanup runs when CI stops the leg too

step "debootstrap trixie into ${root}"
debootstrap --variant=minbase trixie "${root}" >"${root}.debootstrap.log" 2>&1 || {
    tail -n 30 "${root}.debootstrap.log" >&2
    rm -f "${root}.debootstrap.log"
    fail "debootstrap"
}
rm -f "${root}.debootstrap.log"

cp /etc/resolv.conf "${root}/etc/resolv.conf"
mount -t proc proc "${root}/proc"
mkdir -p "${root}/src"
mount --bind "${src}" "${root}/src"
mount -o remount,bind,ro "${root}/src"

# in_chroot <script>: runs bash in the chroot with a clean environment.
in_chroot() {
    chroot "${root}" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/bash -euo pipefail -c "$1"
}

step "apt-get install (g++ 14, clang 19, Catch2 3, ...)"
in_chroot "apt-get update -q
    apt-get install -q -y --no-install-recommends g++ clang cmake ninja-build catch2 \
        libfmt-dev libsqlite3-dev nlohmann-json3-dev >/var/log/weft-apt.log 2>&1 ||
        { tail -n 30 /var/log/weft-apt.log; exit 1; }
    g++ --version | head -n 1
    clang++ --version | head -n 1
    dpkg-query -W -f='catch2 \${Version}\n' catch2
    cmake --version | head -n 1" || fail "installing packages in the chroot"

# Configure flags shared by both compilers: release, tests and examples, no benchmarks, warnings
# as errors. The README blocks are compiled by the host's dev preset already.
flags="-G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=ON -DWEFT_BUILD_BENCH=OFF \
    -DWEFT_BUILD_EXAMPLES=ON -DWEFT_WARNINGS_AS_ERRORS=ON -DWEFT_README_CHECK=OFF"

# GCC 14's flow-based -Warray-bounds and -Wmaybe-uninitialized fire on select.hpp's lock_set and
# selector once select() is inlined at -O2, on paths that cannot run (a count never above the
# array's size); they are printed but do not fail the build. Every other warning does.
gcc_flags="-DWEFT_HEADER_CHECK=ON \
    '-DCMAKE_CXX_FLAGS=-Wno-error=array-bounds -Wno-error=maybe-uninitialized'"

step "g++ 14: configure and build (with the header check)"
in_chroot "cmake -S /src -B /build/gcc ${flags} ${gcc_flags} -DCMAKE_CXX_COMPILER=g++
    cmake --build /build/gcc -j ${jobs}" || fail "g++ 14 build"

step "g++ 14: ctest"
in_chroot "ctest --test-dir /build/gcc -j ${jobs} --output-on-failure --no-tests=error" ||
    fail "g++ 14 tests"

step "clang 19: configure and build"
in_chroot "cmake -S /src -B /build/clang ${flags} -DWEFT_HEADER_CHECK=OFF -DCMAKE_CXX_COMPILER=clang++
    cmake --build /build/clang -j ${jobs}" || fail "clang 19 build"

if [ "${clang_tests}" = 1 ]; then
    step "clang 19: ctest"
    in_chroot "ctest --test-dir /build/clang -j ${jobs} --output-on-failure --no-tests=error" ||
        fail "clang 19 tests"
fi

step "passed"

#!/usr/bin/env bash
# Builds and runs each consumer project against this weft tree, the way users take weft:
#
#   installed         cmake --install to a prefix, then find_package(weft CONFIG REQUIRED)
#   installed_sqlite  the same prefix, find_package(weft CONFIG REQUIRED COMPONENTS sqlite)
#   pkg-config        the same prefix, c++ $(pkg-config --cflags weft) ... $(pkg-config --libs weft)
#   subdirectory      add_subdirectory(<weft>)
#   fetchcontent      FetchContent_Declare(weft SOURCE_DIR <weft>) + FetchContent_MakeAvailable
#
# The installed prefix is moved after installing, so the package must be relocatable. Every
# program checks its own result and exits non-zero on a wrong one; any failure stops the script
# with a line starting "FAILED: consumers:". Called by .ci/run as step (e).
#
# Environment: WEFT_CONSUMERS_SQLITE=0 skips the sqlite consumer (default 1: weft must be
# installed with its sqlite component, so libsqlite3-dev is needed); WEFT_CONSUMERS_BUILD_TYPE
# (Debug), WEFT_CONSUMERS_JOBS (2); WEFT_CONSUMERS_KEEP=1 keeps the work directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "${here}/../.." && pwd)
build_type=${WEFT_CONSUMERS_BUILD_TYPE:-Debug}
jobs=${WEFT_CONSUMERS_JOBS:-2}
with_sqlite=${WEFT_CONSUMERS_SQLITE:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-consumers.XXXXXX")

cleanup() {
    if [ "${WEFT_CONSUMERS_KEEP:-0}" = 1 ]; then
        echo "consumers: work directory kept in ${work}"
    else
        rm -rf "${work}"
    fi
}
trap cleanup EXIT

step() {
    echo
    echo "--> consumers: $*"
}
fail() {
    echo "FAILED: consumers: $*" >&2
    exit 1
}

generator=()
if command -v ninja >/dev/null; then
    generator=(-G Ninja)
fi

# configure <source dir> <build dir> [cmake args...]; then build it.
configure_and_build() {
    local src=$1 bin=$2
    shift 2
    cmake -S "${src}" -B "${bin}" "${generator[@]}" -DCMAKE_BUILD_TYPE="${build_type}" "$@" ||
        fail "configuring ${src}"
    cmake --build "${bin}" -j "${jobs}" || fail "building ${src}"
}

# run <name> <program>: runs it, shows its output, fails unless it exits 0 and says ": ok".
run() {
    local name=$1 program=$2 output
    if ! output=$(timeout 60 "${program}" 2>&1); then
        echo "${output}"
        fail "${name}: ${program} did not exit 0 within 60s"
    fi
    echo "${output}"
    grep -q ": ok" <<<"${output}" || fail "${name}: ${program} did not report ok"
}

version=$(sed -n 's/^ *VERSION \([0-9][0-9.]*\)$/\1/p' "${root}/CMakeLists.txt" | head -n 1)
[ -n "${version}" ] || fail "no VERSION line in ${root}/CMakeLists.txt"
echo "consumers: weft ${version} from ${root}, ${build_type}, work directory ${work}"

# ---------------------------------------------------------------------------------------------
step "install weft (cmake --install) into a prefix, then move the prefix"
sqlite_switch=-DCMAKE_DISABLE_FIND_PACKAGE_SQLite3=ON
if [ "${with_sqlite}" = 1 ]; then
    sqlite_switch=-DCMAKE_REQUIRE_FIND_PACKAGE_SQLite3=ON
fi
# Installed to one prefix and used from another: nothing may point back to where it was built.
configure_and_build "${root}" "${work}/weft-build" \
    -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=OFF \
    -DCMAKE_INSTALL_PREFIX="${work}/never-used" "${sqlite_switch}"
cmake --install "${work}/weft-build" --prefix "${work}/staged" || fail "cmake --install"
mv "${work}/staged" "${work}/prefix"
rm -rf "${work}/weft-build"
prefix="${work}/prefix"

config_dir=$(dirname "$(find "${prefix}" -name weftConfig.cmake -print -quit)")
[ -d "${config_dir}" ] || fail "no weftConfig.cmake installed"
expected_files=(
    "include/weft/weft.hpp" "include/weft/es.hpp" "include/weft/version.hpp"
    "include/weft/detail/waiter.hpp" "share/pkgconfig/weft.pc"
    "${config_dir#"${prefix}/"}/weftConfig.cmake"
    "${config_dir#"${prefix}/"}/weftConfigVersion.cmake"
    "${config_dir#"${prefix}/"}/weftTargets.cmake"
)
if [ "${with_sqlite}" = 1 ]; then
    expected_files+=("${config_dir#"${prefix}/"}/weftSqliteTargets.cmake"
        "share/pkgconfig/weft-sqlite.pc")
fi
for file in "${expected_files[@]}"; do
    [ -f "${prefix}/${file}" ] || fail "not installed: ${file}"
done
if grep -rl -e "${work}/never-used" -e "${root}" "${prefix}" >/dev/null; then
    fail "installed files name the build or install path:" \
        "$(grep -rl -e "${work}/never-used" -e "${root}" "${prefix}")"
fi
echo "installed ${#expected_files[@]} expected files; no absolute build or source paths"

# ---------------------------------------------------------------------------------------------
step "installed: find_package(weft CONFIG REQUIRED)"
configure_and_build "${here}/installed" "${work}/installed" -DCMAKE_PREFIX_PATH="${prefix}"
run installed "${work}/installed/consumer"

if [ "${with_sqlite}" = 1 ]; then
    step "installed_sqlite: find_package(weft CONFIG REQUIRED COMPONENTS sqlite)"
    configure_and_build "${here}/installed_sqlite" "${work}/installed_sqlite" \
        -DCMAKE_PREFIX_PATH="${prefix}"
    run installed_sqlite "${work}/installed_sqlite/consumer_sqlite"
else
    step "installed_sqlite: skipped (WEFT_CONSUMERS_SQLITE=0)"
fi

# ---------------------------------------------------------------------------------------------
step "pkg-config: weft.pc"
command -v pkg-config >/dev/null || fail "pkg-config is not installed"
export PKG_CONFIG_PATH="${prefix}/share/pkgconfig"
pc_version=$(pkg-config --modversion weft) || fail "pkg-config does not find weft"
[ "${pc_version}" = "${version}" ] || fail "weft.pc says version ${pc_version}, not ${version}"
cflags=$(pkg-config --cflags weft)
libs=$(pkg-config --libs weft)
echo "pkg-config --cflags weft: ${cflags}"
echo "pkg-config --libs weft:   ${libs}"
include_dir=$(sed -n 's/.*-I\([^ ]*\).*/\1/p' <<<"${cflags}")
[ -f "${include_dir}/weft/weft.hpp" ] ||
    fail "pkg-config --cflags weft: no weft/weft.hpp under '${include_dir}'"
mkdir -p "${work}/pkg-config"
# shellcheck disable=SC2086 # the flags are words
"${CXX:-c++}" -std=c++20 ${cflags} "${here}/program.cpp" -o "${work}/pkg-config/consumer" ${libs} ||
    fail "compiling with pkg-config's flags"
run pkg-config "${work}/pkg-config/consumer"
if [ "${with_sqlite}" = 1 ]; then
    sqlite_libs=$(pkg-config --libs weft-sqlite) || fail "pkg-config does not find weft-sqlite"
    echo "pkg-config --libs weft-sqlite: ${sqlite_libs}"
    grep -q -- "-lsqlite3" <<<"${sqlite_libs}" || fail "weft-sqlite.pc does not link sqlite3"
fi
unset PKG_CONFIG_PATH

# ---------------------------------------------------------------------------------------------
for kind in subdirectory fetchcontent; do
    step "${kind}: weft as a subproject"
    configure_and_build "${here}/${kind}" "${work}/${kind}" -DWEFT_SOURCE_DIR="${root}"
    run "${kind}" "${work}/${kind}/consumer"
    # WEFT_INSTALL is OFF in a subproject: installing the parent installs nothing of weft.
    cmake --install "${work}/${kind}" --prefix "${work}/${kind}-install" >/dev/null ||
        fail "${kind}: cmake --install"
    if [ -e "${work}/${kind}-install/include/weft" ]; then
        fail "${kind}: installing the parent project installed weft's headers"
    fi
done

echo
echo "consumers: all consumer projects built and ran"

#!/usr/bin/env bash
# Checks that scripts/setup.sh installs every Debian package the build and the
# tests use, so that the README's two commands work on a machine that has
# only what the script installs (issue 13: the fuzz stage once needed
# libclang-rt-19-dev, installed by hand on the CI machine and by no script).
#
# What is "used" is derived, not listed:
#   - every header the build compiled against (`ninja -t deps`),
#   - every library the build links (build.ninja's LINK_LIBRARIES, -l flags
#     resolved by the compiler) and every shared library its programs load
#     (ldd),
#   - the files each compiler's link step pulls in, for each way the scripts
#     compile: the plain build, the sanitizer build (g++ -fsanitize=address,
#     undefined) and the fuzz build (clang-19 -fsanitize=fuzzer,address,undefined),
#     read from the driver's `-###` plan,
#   - the build tools (compilers, linker, cmake, ctest, ninja from CMakeCache.txt),
#   - the commands the README's scripts and the test scripts run (words in
#     command position, resolved on PATH), and each test's program.
# Each file is mapped to its package with `dpkg -S`. A package counts as
# installed by setup.sh when it is in the script's PACKAGES, or in the
# Depends/Pre-Depends closure of that list and of what every Debian system has
# (Essential: yes and Priority: required packages): Recommends are not
# installed (setup.sh passes --no-install-recommends).
#
# Usage: check_packages.sh BUILD_DIR [SETUP_SCRIPT]
# SETUP_SCRIPT (default scripts/setup.sh) lets a test check that a list with a
# package missing fails. Exit 0 when covered; 1 with the missing packages and
# the files that need them; 2 when the check itself cannot run; 77 (a skip)
# on a system without dpkg. GRADC_CHECK_PACKAGES_VERBOSE=1 lists the packages used.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:?usage: check_packages.sh BUILD_DIR [SETUP_SCRIPT]}" && pwd)
SETUP=${2:-$SRC/scripts/setup.sh}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
die() { echo "check_packages: $*" >&2; exit 2; }
command -v dpkg-query >/dev/null && command -v apt-cache >/dev/null || { echo "check_packages: not a Debian system"; exit 77; }
[ -f "$BUILD/build.ninja" ] && [ -f "$BUILD/CMakeCache.txt" ] || die "$BUILD is not a configured Ninja build"

# --- the packages setup.sh installs: its PACKAGES array, evaluated alone ---
mapfile -t listed < <(bash -c 'eval "$(sed -n "/^PACKAGES=(/,/^)/p" "$1")"; printf "%s\n" "${PACKAGES[@]}"' _ "$SETUP")
((${#listed[@]})) || die "no PACKAGES=( ... ) array in $SETUP"
for p in "${listed[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    die "$SETUP lists $p, which is not installed here: run the setup script first"
done
dpkg-query -W -f='${Package} ${Essential} ${Priority}\n' | awk '$2 == "yes" || $3 == "required" { print $1 }' > "$work/base"
# The closure: every top-level (unindented) line of apt-cache's recursive listing.
apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${listed[@]}" $(cat "$work/base") 2>/dev/null |
  awk '/^[^ ]/ { gsub(/[<>]/, ""); sub(/:.*/, ""); print }' | sort -u > "$work/closure"

# --- the files the build and the tests use, each with why ---
used() { printf '%s\t%s\n' "$1" "$2" >> "$work/used"; }
: > "$work/used"
cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
CXX=$(cache CMAKE_CXX_COMPILER)
outside_tree() { case "$1" in "$SRC"/* | "$BUILD"/*) return 1 ;; /*) return 0 ;; *) return 1 ;; esac; }

# Only what the default build makes: targets outside `all` (a benchmark
# built by hand with an optional library) are not what the README runs.
ninja -C "$BUILD" -t inputs all | sort -u > "$work/default"
ninja -C "$BUILD" -t deps | awk 'NR == FNR { keep[$1] = 1; next }
  /^[^ ]/ { obj = $1; sub(/:$/, "", obj); on = obj in keep; next }
  on && /^ +\// { print $1 }' "$work/default" - | sort -u | while read -r f; do
  if outside_tree "$f"; then used "$f" "header of the build"; fi
done
# Libraries: those the default build's link steps depend on (absolute paths
# among its inputs), and -lNAME flags as the compiler finds them.
grep -E '^/.*\.(a|so)(\.[0-9.]+)?$' "$work/default" | while read -r f; do
  if outside_tree "$f"; then used "$f" "linked by the build"; fi
done
grep -h '^ *LINK_LIBRARIES = ' "$BUILD/build.ninja" | tr ' ' '\n' | grep '^-l' | sort -u | while read -r w; do
  f=$("$CXX" -print-file-name="lib${w#-l}.so")
  [ "${f#/}" != "$f" ] || f=$("$CXX" -print-file-name="lib${w#-l}.a")
  used "$f" "linked by the build ($w)"
done
for exe in "$BUILD/gradc" "$BUILD"/tests/*/*_tests; do
  [ -x "$exe" ] || continue
  ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r f; do
    used "$f" "loaded by ${exe#"$BUILD"/}"
  done
done
# What each compiler's driver links in, per mode the scripts use. A file the
# plan names but that is absent is a failure by itself (that was the bug).
printf 'int main() { return 0; }\n' > "$work/probe.cpp"
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' > "$work/fuzz.c"
link_plan() {  # WHY COMPILER ARGS...: the absolute files and -l libraries of the link step
  local why=$1 cc=$2
  shift 2
  command -v "$cc" >/dev/null || { used "/nonexistent/$cc" "$why: the compiler $cc"; return; }
  "$cc" -### "$@" -o "$work/a.out" 2>&1 | tail -n 1 | tr ' ' '\n' | tr -d '"' | while read -r w; do
    case "$w" in
      /tmp/*) ;;  # the driver's temporary objects
      /*.a | /*.o | /*.so | /*.so.*) if [ "${w#"$work"}" = "$w" ]; then used "$w" "$why"; fi ;;
      -l*) f=$("$cc" -print-file-name="lib${w#-l}.so")
           [ "${f#/}" != "$f" ] || f=$("$cc" -print-file-name="lib${w#-l}.a")
           if [ "${f#/}" != "$f" ]; then used "$f" "$why ($w)"; fi ;;
    esac
  done
}
link_plan "the plain build's link" "$CXX" "$work/probe.cpp"
link_plan "the sanitizer build's link (scripts/test.sh)" "$CXX" -fsanitize=address,undefined "$work/probe.cpp"
link_plan "the fuzz build's link (scripts/fuzz.sh)" clang++-19 -fsanitize=fuzzer,address,undefined "$work/fuzz.c"
# Build tools.
for v in CMAKE_CXX_COMPILER CMAKE_C_COMPILER CMAKE_MAKE_PROGRAM CMAKE_COMMAND CMAKE_CTEST_COMMAND GRADC_LLD; do
  f=$(cache "$v")
  if [ -n "$f" ] && [ "${f%-NOTFOUND}" = "$f" ]; then used "$f" "build tool ($v)"; fi
done
# Commands: each test's program (CTestTestfile.cmake), and the words in command
# position in the README's scripts and the test scripts, found on PATH.
find "$BUILD" -name CTestTestfile.cmake -exec sed -n 's/^add_test(\[=*\[\?[^ ]*\]*=*\]\? "\([^"]*\)".*/\1/p' {} + |
  sort -u | while read -r f; do
    [ "${f#/}" != "$f" ] || f=$(type -P "$f") || continue  # a program found on PATH, such as bash
    if outside_tree "$f"; then used "$f" "run by a test"; fi
  done
commands() {  # the first word of each simple command; comments and '...' text (awk, sed programs) dropped
  case "$1" in  # a CMake script runs programs only as COMMAND arguments
    *.cmake) grep -v '^ *#' "$1" | grep -oE 'COMMAND +[A-Za-z0-9][A-Za-z0-9+._-]*' | awk '{ print $2 }' | sort -u; return ;;
  esac
  perl -0777 -ne '
    s/\\\n/ /g; s/^\s*#.*$//mg; s/\s#.*$//mg; s/\x27[^\x27]*\x27/ /g;
    for (split /\$\(|\|\||&&|[|;`(\n]|\bthen\b|\bdo\b|\belse\b|!/) {
      s/^\s+//;
      1 while s/^[A-Za-z_]\w*=\S*\s+// or s/^(if|while|until|exec|time|xargs|command)\s+//;
      print "$1\n" if /^([A-Za-z0-9][A-Za-z0-9+._-]*)(\s|$)/;
    }' "$1" | sort -u
}
scripts=("$SRC"/scripts/test.sh "$SRC"/scripts/demo.sh "$SRC"/scripts/build.sh "$SRC"/scripts/fuzz.sh)
mapfile -t -O ${#scripts[@]} scripts < <(find "$SRC/tests" -name '*.sh' -o -name '*.cmake' | sort)
for s in "${scripts[@]}"; do
  for c in $(commands "$s"); do
    f=$(type -P "$c" 2>/dev/null) || continue
    [ "$(type -t "$c")" = file ] || continue  # a shell builtin or keyword
    used "$f" "run by ${s#"$SRC"/}"
  done
  # Compilers named in a setting: CMAKE_C_COMPILER=clang-19 and the like.
  for c in $(grep -oE 'COMPILER=[A-Za-z0-9+._-]+' "$s" | cut -d= -f2 | sort -u); do
    f=$(type -P "$c" 2>/dev/null) && used "$f" "run by ${s#"$SRC"/}" || used "/nonexistent/$c" "run by ${s#"$SRC"/}"
  done
done

# --- map files to packages: the path, else its canonical path, else across /usr-merge ---
sort -u -o "$work/used" "$work/used"
cut -f1 "$work/used" | sort -u > "$work/files"
xargs -r realpath -m < "$work/files" | paste "$work/files" - |
  awk -F'\t' '{ for (i = 1; i <= 2; i++) { c = $i; print $1 "\t" c
                  a = c; if (sub(/^\/usr\/lib\//, "/lib/", a)) print $1 "\t" a
                  a = c; if (sub(/^\/lib\//, "/usr/lib/", a)) print $1 "\t" a
                  a = c; if (sub(/^\/usr\/bin\//, "/bin/", a)) print $1 "\t" a
                  a = c; if (sub(/^\/bin\//, "/usr/bin/", a)) print $1 "\t" a } }' | sort -u > "$work/candidates"
cut -f2 "$work/candidates" | sort -u | { xargs -r dpkg -S 2>/dev/null || true; } |
  awk -F': ' '!/^diversion/ { n = split($1, ps, ", "); for (i = 1; i <= n; i++) { sub(/:.*/, "", ps[i]); print $2 "\t" ps[i] } }' |
  sort -u > "$work/dpkg"
# file -> package (the first owner found among its candidates)
awk -F'\t' 'NR == FNR { if (!($1 in own)) own[$1] = $2; next } ($2 in own) && !($1 in done) { print $1 "\t" own[$2]; done[$1] = 1 }' \
  "$work/dpkg" "$work/candidates" > "$work/owner"

# --- report: unowned files, then packages outside the closure with the files that need them ---
n_files=$(wc -l < "$work/files")
n_pkgs=$(cut -f2 "$work/owner" | sort -u | wc -l)
awk -F'\t' -v setup="$SETUP" '
  FILENAME == ARGV[1] { inclosure[$1] = 1; next }
  FILENAME == ARGV[2] { if (!($1 in why)) why[$1] = $2; next }
  FILENAME == ARGV[3] { owner[$1] = $2; next }
  FILENAME == ARGV[4] { if (!($1 in owner)) { printf "check_packages: %s is used but no installed package holds it: %s\n", $1, why[$1]; bad = 1 }; next }
  { f = $1; p = $2
    if (p in inclosure) next
    if (!(p in shown)) { shown[p] = 1; printf "check_packages: package %s is used but %s does not install it (add it to PACKAGES); it holds:\n", p, setup }
    printf "    %s  (%s)\n", f, why[f]; bad = 1 }
  END { exit bad }' "$work/closure" "$work/used" "$work/owner" "$work/files" \
  <(sort -t "$(printf '\t')" -k2,2 -k1,1 "$work/owner") && status=0 || status=1

if [ "${GRADC_CHECK_PACKAGES_VERBOSE:-0}" = 1 ]; then
  echo "check_packages: files used, by package:"
  cut -f2 "$work/owner" | sort | uniq -c | sort -rn
fi
if ((status == 0)); then
  echo "check_packages: ok: $n_files files from $n_pkgs packages, all installed by $SETUP (${#listed[@]} listed, $(wc -l < "$work/closure") with dependencies and the base system)"
fi
exit $status

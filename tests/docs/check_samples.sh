#!/usr/bin/env bash
# Docs that state facts about the code are checked against it, so that they
# cannot drift (issue 13):
#   - every repository path in backticks in README.md and docs/*.md exists, and
#     "`NAME` in `PATH`" means PATH mentions NAME;
#   - a fenced block after <!-- sample: COMMAND --> is exactly what COMMAND
#     prints (stdout and stderr), run from a scratch directory that holds
#     examples/ and tests/docs/samples/* (the models behind the samples);
#   - a block after <!-- sample-lines: COMMAND --> is an excerpt of a run with
#     timings: numbers stand for any number, runs of blanks for any blanks,
#     "thread" for "threads", and each line (but "...") must be a line of the
#     output; COMMAND runs twice with one code cache, and the second run counts;
#   - docs/language.md's list of the verbs that take --set is the verbs whose
#     help shows --set: every verb that compiles a model.
# Usage: check_samples.sh GRADC
set -uo pipefail
gradc=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/run" "$tmp/blocks" "$tmp/bin"
# A sample may chain commands (train, then predict): each `gradc` is this one.
ln -s "$gradc" "$tmp/bin/gradc"
export PATH="$tmp/bin:$PATH"
ln -s "$root/examples" "$tmp/run/examples"
for f in "$root"/tests/docs/samples/*; do ln -s "$f" "$tmp/run/"; done
docs=("$root/README.md" "$root"/docs/*.md)
fail=0 checked=0
bad() { echo "FAIL: $*"; fail=1; }

# --- paths and "`NAME` in `PATH`" ---
for doc in "${docs[@]}"; do
  rel=${doc#"$root"/}
  while read -r p; do
    checked=$((checked + 1))
    [ -e "$root/$p" ] || bad "$rel names \`$p\`, which does not exist"
  done < <(grep -oE '`(compiler|runtime|include|tests|scripts|examples|bench|docs|cmake)/[A-Za-z0-9_./-]*`' "$doc" | tr -d '`' | sort -u)
  while IFS=$'\t' read -r name p; do
    checked=$((checked + 1))
    grep -qw -- "$name" "$root/$p" 2>/dev/null || bad "$rel says \`$name\` is in \`$p\`, which does not mention it"
  done < <(tr '\n' ' ' < "$doc" | grep -oE '`[A-Za-z_][A-Za-z0-9_:]*` in `[a-z]+/[A-Za-z0-9_./-]+`' |
           sed -E 's/`([^`]*)` in `([^`]*)`/\1\t\2/' | sort -u)
done

# --- samples ---
normalize() {  # numbers -> #, blanks squeezed, thread(s) -> thread
  sed -E -e 's/[0-9]+(\.[0-9]+)?/#/g' -e 's/[[:space:]]+/ /g' -e 's/ $//' -e 's/threads/thread/g' "$1"
}
n=0 d=0
for doc in "${docs[@]}"; do
  rel=${doc#"$root"/}
  d=$((d + 1))
  awk -v dir="$tmp/blocks" -v rel="$rel" -v d="$d" '
    /^<!-- sample(-lines)?: .* -->$/ { kind = $0; sub(/^<!-- /, "", kind); sub(/:.*/, "", kind)
                                      cmd = $0; sub(/^<!-- sample(-lines)?: /, "", cmd); sub(/ -->$/, "", cmd)
                                      want = 1; line = NR; next }
    want && /^```/ && !inside { inside = 1; n++; file = sprintf("%s/%d_%d", dir, d, NR); next }
    inside && /^```/ { inside = 0; want = 0; close(file); printf "%s\t%s\t%s\t%s:%d\n", kind, cmd, file, rel, line; next }
    inside { print > file }
  ' "$doc" >> "$tmp/samples"
done
while IFS=$'\t' read -r kind cmd file where; do
  n=$((n + 1))
  case "$cmd" in gradc\ *) ;; *) bad "$where: a sample command must start with 'gradc'"; continue ;; esac
  run() { (cd "$tmp/run" && GRADC_CACHE_DIR="$tmp/cache" eval "\"$gradc\" ${cmd#gradc }") > "$tmp/out" 2>&1; }
  run
  if [ "$kind" = sample ]; then
    if ! cmp -s "$file" "$tmp/out"; then
      bad "$where: the sample of '$cmd' differs from what gradc prints (< doc, > gradc):"
      diff "$file" "$tmp/out"
    fi
  else
    run  # the second run: the code cache is warm, as the samples show
    normalize "$tmp/out" > "$tmp/out.n"
    normalize "$file" | while IFS= read -r l; do
      [ "$(echo "$l" | tr -d ' ')" = "..." ] && continue
      grep -qxF -- "$l" "$tmp/out.n" || echo "$l"
    done > "$tmp/missing"
    if [ -s "$tmp/missing" ]; then
      bad "$where: lines of the sample of '$cmd' that gradc does not print (numbers as #):"
      sed 's/^/    /' "$tmp/missing"
      echo "  gradc printed:"
      sed 's/^/    /' "$tmp/out"
    fi
  fi
done < <(cat "$tmp/samples" 2>/dev/null)
[ "$n" -gt 0 ] || bad "no samples found"

# --- the verbs that take --set ---
verbs=$("$gradc" --help | awk '/^verbs:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }')
takes=$(for v in $verbs; do "$gradc" "$v" --help 2>&1 | grep -- '--set' >/dev/null && echo "$v"; done | sort)
listed=$(tr '\n' ' ' < "$root/docs/language.md" | grep -oE '`--set B=256` on the command line \(every verb that compiles a model: [^)]*\)' |
         grep -oE '`[a-z]+`' | tr -d '`' | sort)
[ -n "$listed" ] || bad "docs/language.md: no '(every verb that compiles a model: ...)' list after \`--set B=256\` on the command line"
if [ "$takes" != "$listed" ]; then
  bad "docs/language.md lists $(echo $listed) as the verbs taking --set; their help says: $(echo $takes) (of $(echo $verbs))"
fi
echo "checked $checked path references, $n samples, the --set verbs"
exit $fail

#!/usr/bin/env bash
# Checks the diagnostics gradc prints for one model of the error corpus.
#
#   run_one.sh GRADC FILE
#
# FILE states what it expects in comment lines (anywhere, conventionally at the top):
#
#   # expect: LINE:COL: error: MESSAGE-SUBSTRING     an error at LINE:COL
#   # expect-note: LINE:COL: MESSAGE-SUBSTRING       a note at LINE:COL (belongs to the error above it)
#   # expect: error: MESSAGE-SUBSTRING               an error without a location
#                                                    (only "too many errors emitted")
#
# The test passes when `GRADC check FILE`:
#   - exits with status 1 (>= 128 is reported as a crash);
#   - prints on stderr, in this order, every expected diagnostic, rendered as
#     `FILE:LINE:COL: error: ...SUBSTRING...` (notes: `FILE:LINE:COL: note: ...`);
#   - prints no error that is not expected (extra notes are allowed);
#   - prints after every located error or note the source line and a caret line
#     (a line with '^'), both indented by four spaces;
#   - ends with the summary `N error(s) generated.` where N counts the errors printed;
#   - prints nothing else on stderr (no internal compiler error).
# Bash only.
set -u

if [[ $# -ne 2 ]]; then
  echo "usage: run_one.sh GRADC FILE" >&2
  exit 2
fi
gradc=$1
file=$2

if [[ ! -x $gradc ]]; then
  echo "FAIL: gradc binary '$gradc' is not executable" >&2
  exit 1
fi
if [[ ! -f $file ]]; then
  echo "FAIL: test file '$file' does not exist" >&2
  exit 1
fi

# ---- the expectations ----
exp_kind=() # error | note
exp_loc=()  # LINE:COL, or empty for an unlocated error
exp_msg=()
re_err='^#[[:space:]]*expect:[[:space:]]*([0-9]+):([0-9]+):[[:space:]]*error:[[:space:]]*(.*[^[:space:]])[[:space:]]*$'
re_err_noloc='^#[[:space:]]*expect:[[:space:]]*error:[[:space:]]*(.*[^[:space:]])[[:space:]]*$'
re_note='^#[[:space:]]*expect-note:[[:space:]]*([0-9]+):([0-9]+):[[:space:]]*(.*[^[:space:]])[[:space:]]*$'
lineno=0
bad_expect=0
while IFS= read -r line || [[ -n $line ]]; do
  lineno=$((lineno + 1))
  line=${line%$'\r'}
  if [[ $line =~ $re_err ]]; then
    exp_kind+=(error)
    exp_loc+=("${BASH_REMATCH[1]}:${BASH_REMATCH[2]}")
    exp_msg+=("${BASH_REMATCH[3]}")
  elif [[ $line =~ $re_err_noloc ]]; then
    exp_kind+=(error)
    exp_loc+=("")
    exp_msg+=("${BASH_REMATCH[1]}")
  elif [[ $line =~ $re_note ]]; then
    exp_kind+=(note)
    exp_loc+=("${BASH_REMATCH[1]}:${BASH_REMATCH[2]}")
    exp_msg+=("${BASH_REMATCH[3]}")
  elif [[ $line =~ ^#[[:space:]]*expect ]]; then
    echo "FAIL: $file:$lineno: malformed expectation: $line" >&2
    bad_expect=1
  fi
done <"$file"
if [[ $bad_expect -ne 0 ]]; then exit 1; fi
if [[ ${#exp_kind[@]} -eq 0 ]]; then
  echo "FAIL: $file states no '# expect:' lines" >&2
  exit 1
fi

render_expected() { # index
  local i=$1
  if [[ -z ${exp_loc[$i]} ]]; then
    printf '%s: %s' "${exp_kind[$i]}" "${exp_msg[$i]}"
  else
    printf '%s:%s: %s: ...%s...' "$file" "${exp_loc[$i]}" "${exp_kind[$i]}" "${exp_msg[$i]}"
  fi
}

# ---- run gradc ----
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradc-diag.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
timeout 60 "$gradc" check "$file" >"$tmp/out" 2>"$tmp/err"
rc=$?
mapfile -t err <"$tmp/err"

problems=()
if [[ $rc -eq 124 ]]; then
  problems+=("gradc did not finish within 60 s (hang)")
elif [[ $rc -ge 128 ]]; then
  problems+=("gradc crashed (exit status $rc, signal $((rc - 128)))")
elif [[ $rc -ne 1 ]]; then
  problems+=("exit status $rc, expected 1 (the model is wrong)")
fi

# ---- split stderr into diagnostics ----
act_kind=() act_loc=() act_msg=() act_text=()
n_errors=0
too_many=0
summary=""
i=0
n=${#err[@]}
re_located='^(.*):([0-9]+):([0-9]+): (error|note): (.*)$'
while [[ $i -lt $n ]]; do
  l=${err[$i]}
  i=$((i + 1))
  if [[ $l == "    "* ]]; then
    problems+=("stray indented line on stderr: '$l'")
    continue
  fi
  if [[ $l =~ $re_located && ${BASH_REMATCH[1]} == "$file" ]]; then
    kind=${BASH_REMATCH[4]}
    act_kind+=("$kind")
    act_loc+=("${BASH_REMATCH[2]}:${BASH_REMATCH[3]}")
    act_msg+=("${BASH_REMATCH[5]}")
    act_text+=("$l")
    [[ $kind == error ]] && n_errors=$((n_errors + 1))
    # the source line and the caret line
    if [[ $i -ge $n || ${err[$i]} != "    "* ]]; then
      problems+=("no source line after: $l")
      continue
    fi
    i=$((i + 1))
    if [[ $i -ge $n || ${err[$i]} != "    "* || ${err[$i]} != *"^"* ]]; then
      problems+=("no caret line after: $l")
      continue
    fi
    i=$((i + 1))
  elif [[ $l == "error: "* ]]; then
    act_kind+=(error)
    act_loc+=("")
    act_msg+=("${l#error: }")
    act_text+=("$l")
    n_errors=$((n_errors + 1))
  elif [[ $l == "fatal error: too many errors emitted"* ]]; then
    # The error limit stops compilation; like clang, it is not counted in the summary.
    act_kind+=(error)
    act_loc+=("")
    act_msg+=("${l#fatal error: }")
    act_text+=("$l")
    too_many=1
  elif [[ $l =~ ^([0-9]+)\ errors?\ generated\.$ ]]; then
    if [[ -n $summary ]]; then problems+=("summary line printed twice: '$l'"); fi
    summary=${BASH_REMATCH[1]}
    if [[ $i -ne $n ]]; then problems+=("the summary '$l' is not the last line of stderr"); fi
  else
    problems+=("unexpected line on stderr: '$l'")
  fi
done

if [[ $rc -eq 1 ]]; then
  if [[ -z $summary ]]; then
    problems+=("no 'N errors generated.' summary at the end of stderr")
  elif [[ $summary -ne $n_errors ]]; then
    problems+=("the summary says $summary error(s), but $n_errors were printed")
  fi
fi

# ---- match the expectations in order ----
matches() { # actual index, expected index
  local a=$1 e=$2
  [[ ${act_kind[$a]} == "${exp_kind[$e]}" && ${act_loc[$a]} == "${exp_loc[$e]}" && ${act_msg[$a]} == *"${exp_msg[$e]}"* ]]
}
status=() # per actual diagnostic: ok | extra | note
p=0
nexp=${#exp_kind[@]}
for a in "${!act_kind[@]}"; do
  if [[ $p -lt $nexp ]] && matches "$a" "$p"; then
    status+=(ok)
    p=$((p + 1))
  elif [[ ${act_kind[$a]} == note ]]; then
    status+=(note)
  else
    status+=(extra)
    problems+=("unexpected error: ${act_text[$a]}")
  fi
done
if [[ $p -lt $nexp ]]; then
  problems+=("expected diagnostic not found (in order): $(render_expected "$p")")
fi

if [[ ${#problems[@]} -eq 0 ]]; then
  echo "PASS: $file (${#exp_kind[@]} expected diagnostic(s))"
  exit 0
fi

# ---- a readable report ----
{
  echo "FAIL: $file"
  for pr in "${problems[@]}"; do echo "  - $pr"; done
  echo
  echo "expected (in order):"
  for e in "${!exp_kind[@]}"; do
    mark=" "
    [[ $e -lt $p ]] && mark="="
    [[ $e -eq $p ]] && mark="-"
    [[ $e -gt $p ]] && mark="?"
    echo "  $mark $(render_expected "$e")"
  done
  echo "actual diagnostics ('=' matched, '+' unexpected error, ' ' extra note):"
  if [[ ${#act_kind[@]} -eq 0 ]]; then echo "    (none)"; fi
  for a in "${!act_kind[@]}"; do
    case ${status[$a]:-extra} in
      ok) mark="=" ;;
      note) mark=" " ;;
      *) mark="+" ;;
    esac
    echo "  $mark ${act_text[$a]}"
  done
  echo "('-' is the first expectation not met, '?' those after it)"
  echo
  echo "exit status: $rc"
  echo "---- stderr of: $gradc check $file ----"
  cat "$tmp/err"
  echo "---- end of stderr ----"
} >&2
exit 1

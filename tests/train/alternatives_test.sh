#!/usr/bin/env bash
# examples/alternatives/compare.sh with the short budget: every method trains
# both models, the table has its 8 rows with the numbers that can be checked
# (forward mode and back-propagation agree; the gradient-free methods take no
# gradient; forward mode pays one tangent per param), and the plots are SVG
# with the four curves.
# Usage: alternatives_test.sh GRADC
set -uo pipefail
G=$1 case=quick
. "$(dirname "$0")/lib.sh"
GRADC=$G bash $E/alternatives/compare.sh --quick -o $tmp/out > $tmp/log 2>&1 || fail "compare.sh: $(cat $tmp/log)"
t=$tmp/out/table.md
[ "$(grep -c '^| \(xor\|digits\) |' $t)" = 8 ] || fail "not 8 rows: $(cat $t)"
# row MODEL METHOD FIELD: a cell of the table (FIELD counts from 2), spaces removed; fails when absent.
row() {
  local v
  v=$(grep -F "| $1 | $2 |" $t | tr -d ' ' | cut -d'|' -f"$3")
  [ -n "$v" ] || fail "no cell $3 for $1, $2: $(cat $t)"
  echo "$v"
}
for m in xor digits; do
  [ "$(row $m "back-propagation + SGD" 4)" = "$(row $m "forward-mode gradients + SGD" 4)" ] ||
    fail "$m: forward mode and back-propagation end at different losses: $(cat $t)"
  for g in "genetic algorithm" "evolution strategies"; do
    [ "$(row $m "$g" 11)" = 0 ] || fail "$m, $g: gradient evaluations: $(cat $t)"
  done
done
# xor: 33 params, 100 steps: 100 * (1 + 33) loss evaluations by forward mode; genetic's 64 members + 1.
[ "$(row xor "forward-mode gradients + SGD" 10)" = 3400 ] || fail "forward mode's evaluations: $(cat $t)"
[ "$(row xor "genetic algorithm" 10)" = 6500 ] || fail "genetic's evaluations: $(cat $t)"
[ "$(row xor "genetic algorithm" 5)" = "100.0%" ] || fail "genetic does not solve xor: $(cat $t)"
for m in xor digits; do
  /usr/bin/python3 -c "
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
lines = root.findall('{http://www.w3.org/2000/svg}polyline')
sys.exit(0 if len(lines) == 4 and all(len(l.get('points').split()) >= 2 for l in lines) else 1)" $tmp/out/$m.svg ||
    fail "$m.svg is not a plot of four curves"
done
cat $t

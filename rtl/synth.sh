#!/usr/bin/env bash
# Synthesises the PE and the top (N PEs, default 64) to yosys's generic cells, keeping the
# SRAMs (Spmat, pointer banks, register files, queues, descriptors, codebooks) as memory
# cells, as a chip would use SRAM macros for them; prints each module's cell, flip-flop,
# memory and latch counts. docs/rtl.md quotes it.
#
#   bash rtl/synth.sh [N_PE]
#
# The PE is synthesised once; the top is synthesised with the PE as a black box (its N
# instances are counted as cells), because yosys 0.23 fails an internal assertion when it
# elaborates the whole hierarchy at once. Parameters: the paper's PE (16K Spmat words =
# 128 KB, 16K pointers = 32 KB, 64 activations per register file, 64 accumulators, an
# 8-deep queue, 4-bit codes and indices, 16-bit pointers, 32-bit accumulators).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
n="${1:-64}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sizes="-chparam SPMAT_DEPTH 16384 -chparam PTR_DEPTH 16384 -chparam ACT_DEPTH 64 -chparam ACC_ROWS 64"
flow="synth -top TOP -flatten -run :fine
memory -nomap
opt -full
techmap
opt -fast
abc -fast
opt -fast
check -assert
stat"
cat > "$work/eie_pe.ys" <<YS
read_verilog -sv $here/eie_pe.v
hierarchy -top eie_pe $sizes
${flow//TOP/eie_pe}
YS
cat > "$work/eie_top.ys" <<YS
read_verilog -sv -lib $here/eie_pe.v
read_verilog -sv $here/eie_lnzd.v $here/eie_top.v
hierarchy -top eie_top $sizes -chparam N_PE $n -chparam MAX_PARTS 16 -chparam MAX_LAYERS 16
${flow//TOP/eie_top}
YS
for top in eie_pe eie_top; do
    yosys -q -l "$work/$top.log" "$work/$top.ys" >/dev/null 2>"$work/$top.err" \
        || { cat "$work/$top.err" >&2; exit 1; }
    awk -v top="$top" -v n="$n" '
        /Number of cells:/ { cells = $4 }
        /\$_.*DFF/ { ffs += $2 }
        /\$mem_v2/ { mems = $2 }
        /\$_DLATCH/ { latches += $2 }
        / eie_pe / { pes = $2 }
        END {
            what = (top == "eie_top") ? sprintf(" (with %d PEs as black boxes)", pes) : ""
            printf "%s%s: %d cells, %d flip-flops, %d memories, %d latches\n", top, what, cells, ffs, mems, latches
        }
    ' "$work/$top.log"
done

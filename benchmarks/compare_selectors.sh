#!/usr/bin/env bash
# Issue 16's selector comparison (BENCHMARKS.md): per layer, the measured time
# of the kernel each selector picks (analytical, random, search at each budget,
# and the predictor when it is registered), each one's time to configure, and
# the oracle (the whole space measured when small, else a large search: the
# "oracle" column says which). Needs the installed wheel (pip install .) and a
# C++ compiler; every measurement is also kept in a tuning log.
#
#   benchmarks/compare_selectors.sh [OUT_DIR] [THREADS]
#
# Conv layers (ResNet-50, MobileNetV2 specs): their spaces hold at most a few
# dozen configs, so the oracle is exhaustive and no candidate needs its own
# compile (minutes per network). GEMM layers (transformer specs): every
# candidate is compiled (about 3-20 s each, with the machine's load), so the
# budgets stop at 64 and the oracle is a 256-measurement search.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/selectors}
threads=${2:-1}
mkdir -p "$out"
for net in conv_resnet50 conv_mobilenetv2 gemm_transformer; do
  mkdir -p "$out/$net"
  cp "kernels_spec/$net.yaml" "$out/$net/"
done
{ date -u; uptime; lscpu | grep -E "Model name|^CPU\(s\)"; } | tee "$out/machine.txt"
for net in conv_resnet50 conv_mobilenetv2; do
  autoconfig compare-selectors --spec "$out/$net" --threads "$threads" --budget 16,64,256 --markdown \
    --save-json "$out/$net.json" --log "$out/$net-log.json" | tee "$out/$net.md"
done
autoconfig compare-selectors --spec "$out/gemm_transformer" --threads "$threads" --budget 16,64 \
  --oracle-budget 256 --markdown --save-json "$out/gemm_transformer.json" --log "$out/gemm_transformer-log.json" \
  | tee "$out/gemm_transformer.md"
uptime | tee -a "$out/machine.txt"

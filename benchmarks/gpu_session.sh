#!/usr/bin/env bash
# The GPU checks and benchmarks of this repository, in steps that each fit a lent machine's 10-minute command limit.
#
#   benchmarks/gpu_session.sh wheels|setup|tests|step_cost|compile|epoch_loop|catalog|ddp
#
# wheels runs on a machine with a package registry (the GPU machine has none): it downloads RecBole 1.2.1 and
# pandas 2.2.3 for the GPU machine's Python ($GPU_PYTHON, default 3.12) into .whl/, which the `device` tool carries.
# setup installs them into /tmp/site; every other step uses them. Results land in benchmarks/results/ and, when
# $OUT is set, are copied there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

copy_out() {
    if [ -n "${OUT:-}" ]; then cp "$@" "$OUT"/; fi
}

case "${1:-}" in
    wheels)
        "$python" -m pip download -q --no-deps --only-binary=:all: --python-version "${GPU_PYTHON:-3.12}" \
            --platform manylinux2014_x86_64 -d .whl recbole==1.2.1 pandas==2.2.3
        ls .whl
        ;;
    setup)
        rm -rf /tmp/site
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        "$python" -c "import recbole_srt, torch; print('ok', torch.__version__, torch.cuda.get_device_name(0))"
        ;;
    tests)
        "$python" -m pytest -q -x -p no:cacheprovider 2>&1 | tail -5
        "$python" -m pytest -q -p no:cacheprovider -m gpu 2>&1 | tail -15
        ;;
    step_cost)
        "$python" benchmarks/step_cost.py --gpu --batch "${BATCH:-1024}" --steps 5 --warmup 3
        copy_out benchmarks/results/step_cost_gpu.*
        ;;
    compile)
        "$python" benchmarks/step_cost.py --gpu --batch "${BATCH:-1024}" --archs L2-H2-D64 L24-H4-D256 --precisions bf16 \
            --compile off on --steps 5 --warmup 5 --name step_cost_compile_gpu
        copy_out benchmarks/results/step_cost_compile_gpu.*
        ;;
    epoch_loop)
        "$python" benchmarks/epoch_loop.py --gpu --arch "${ARCH:-L24-H4-D256}" --precision bf16 --batch 256 --length 50
        copy_out benchmarks/results/epoch_loop_gpu.*
        ;;
    catalog)
        "$python" benchmarks/catalog_scale.py --gpu --sizes 1000000 10000000 --data_dir /tmp/catalog_scale \
            --results benchmarks/results/catalog_scale_gpu.jsonl
        copy_out benchmarks/results/catalog_scale_gpu.*
        ;;
    ddp)
        "$python" benchmarks/distributed_throughput.py --gpu --procs 1
        copy_out benchmarks/results/distributed_throughput_gpu.*
        ;;
    *)
        echo "usage: $0 wheels|setup|tests|step_cost|compile|epoch_loop|catalog|ddp" >&2
        exit 2
        ;;
esac

#!/usr/bin/env bash
# Issue 23's quality check (README, "--precision bf16: speed and quality"): BCQ and SQV trained in fp32 and in
# bf16 on the same buffers, 3 seeds. CartPole: the v1 study's protocol (behavioral 100k steps, buffer 100k,
# 20k offline iterations evaluated every 2k with 10 episodes); both precisions run here. MinAtar Breakout:
# study v2's buffers of seeds 2-4 and its fp32 BCQ/SQV runs (30k iterations, every 3k), so only the bf16 runs
# are made here (seeds 2-4: the buffers of seeds 0-1 were deleted from this machine after their arms had run).
# A finished run (its final model on disk) is skipped, so the script resumes. The report, run for run:
#   python plot.py --results_dir bf16_quality/bf16/results --against bf16_quality/fp32/results --last 3 --out_dir bf16_quality/cartpole
#   python plot.py --results_dir bf16_quality/minatar_bf16/results --against study_v2/results --last 3 --out_dir bf16_quality/minatar
# Usage: bash configs/bf16_quality.sh [cartpole|minatar|all]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bf16_quality
PY=${PYTHON:-python}
what=${1:-all}
common=(--eval_episodes 10 --num_envs 16)

offline() {  # offline DIR ENV SEED PRECISION STEPS FREQ [ALGO FLAGS]
    local dir=$1 env=$2 seed=$3 precision=$4 steps=$5 freq=$6; shift 6
    local algo=BCQ; [ "${1:-}" = --sqv ] && algo=SQV
    local setting=${env//\//_}_$seed
    [ -f "$dir/models/${algo}_${setting}_Q" ] && return 0
    $PY main.py --env "$env" --seed "$seed" --out_dir "$dir" --precision "$precision" --max_timesteps "$steps" \
        --eval_freq "$freq" "${common[@]}" --resume "$@"
}

if [ "$what" = cartpole ] || [ "$what" = all ]; then
    mkdir -p $OUT/fp32 $OUT/bf16
    ln -sfn ../fp32/buffers $OUT/bf16/buffers  # the bf16 runs read the fp32 folder's buffers
    for seed in 0 1 2; do
        setting=CartPole-v1_$seed
        [ -f $OUT/fp32/models/behavioral_${setting}_Q ] && [ ! -d $OUT/fp32/checkpoints/behavioral_$setting ] ||
            $PY main.py --train_behavioral --env CartPole-v1 --seed $seed --out_dir $OUT/fp32 --max_timesteps 100000 \
                --eval_freq 10000 "${common[@]}" --resume
        [ -f $OUT/fp32/buffers/Default_${setting}_manifest.json ] ||
            $PY main.py --generate_buffer --env CartPole-v1 --seed $seed --out_dir $OUT/fp32 --max_timesteps 100000 \
                "${common[@]}"
        for precision in fp32 bf16; do
            offline $OUT/$precision CartPole-v1 $seed $precision 20000 2000
            offline $OUT/$precision CartPole-v1 $seed $precision 20000 2000 --sqv
        done
    done
fi

if [ "$what" = minatar ] || [ "$what" = all ]; then
    mkdir -p $OUT/minatar_bf16
    ln -sfn ../../study_v2/buffers $OUT/minatar_bf16/buffers  # study v2's buffers (made by sweep.py)
    for seed in 2 3 4; do
        offline $OUT/minatar_bf16 MinAtar/Breakout-v1 $seed bf16 30000 3000
        offline $OUT/minatar_bf16 MinAtar/Breakout-v1 $seed bf16 30000 3000 --sqv
    done
fi

# Ring: unit tests of ring/ (test_ring.c) and smoke runs of the planner
# (tools/rebalance.c) and of the ring benchmark (bench/ring_bench.c).
rl_add_unit(test_ring 9 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ring.c LIBS rlring)

set(RL_SAMPLE_RING ${CMAKE_CURRENT_LIST_DIR}/../tools/sample.ring)
rl_add_test(rebalance_plan_json 10 $<TARGET_FILE:rebalance> plan --ring ${RL_SAMPLE_RING}
            --add s5=tcp://127.0.0.1:7105 --sample 20000 --json)
rl_add_test(rebalance_plan_table 10 $<TARGET_FILE:rebalance> plan --ring ${RL_SAMPLE_RING}
            --remove s2 --reweight s3=2 --sample 20000)
# Usage errors exit 2, a bad ring file exits 1: both must fail.
rl_add_test(rebalance_bad_argument 10 $<TARGET_FILE:rebalance> plan --ring ${RL_SAMPLE_RING}
            --frobnicate)
rl_add_test(rebalance_missing_ring 10 $<TARGET_FILE:rebalance> plan --ring no-such.ring)
set_tests_properties(rebalance_bad_argument rebalance_missing_ring PROPERTIES WILL_FAIL TRUE)
# init must reproduce the sample ring byte for byte (placement is deterministic)
rl_add_test(rebalance_init_sample 10 sh -c "$0 init --epoch 1 --shard s1=tcp://127.0.0.1:7101 \
--shard s2=tcp://127.0.0.1:7102 --shard s3=tcp://127.0.0.1:7103 --shard s4=tcp://127.0.0.1:7104 \
| cmp - $1" $<TARGET_FILE:rebalance> ${RL_SAMPLE_RING})

rl_add_test(ring_bench_quick 10 $<TARGET_FILE:ring_bench> --quick)

# Smoke run of rlbench (about 3 s): it starts its own shard (WAL synced),
# drives it closed loop for 2 s, then runs the full conservation check;
# exit 0 only if the check passes. rlbench stops the shard and removes its
# data directory whatever happens.
rl_add_test(rlbench_smoke 16 $<TARGET_FILE:rlbench> --spawn-shard $<TARGET_FILE:shard>
            --data ${CMAKE_BINARY_DIR} --accounts 1000 --batch 100 --window 4
            --connections 2 --warmup 0.5 --duration 2 --probe-writes 20 --seed 42
            --timeout-ms 20000)

# The same with --transfer-pending 30 on 60 accounts (the histories are
# checked too): pending transfers posted or voided later, nothing pending at
# the end of the check (about 3 s; 6 s with sanitizers at load 18).
rl_add_test(rlbench_pending_smoke 16 $<TARGET_FILE:rlbench> --spawn-shard $<TARGET_FILE:shard>
            --data ${CMAKE_BINARY_DIR} --accounts 60 --batch 100 --window 4
            --connections 2 --warmup 0.5 --duration 2 --probe-writes 20 --seed 43
            --transfer-pending 30 --timeout-ms 20000)

# Smoke run of bench/table.sh --quick (one shard, the 4-shard cluster on the
# uniform and same-shard workloads, the open-loop line: about 10 s at load 4,
# 13 s at load 6): the table's shape and every conservation check passed.
add_test(NAME bench_table_quick
         COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/test_bench_table.sh ${CMAKE_BINARY_DIR})
set_tests_properties(bench_table_quick PROPERTIES TIMEOUT 45 LABELS "bench;smoke"
                     RESOURCE_LOCK cluster_load)

# Smoke run of bench/rebalance_bench.sh --smoke (3 shards grown to 4 by
# `rebalance apply` under rlbench's closed loop, 10,000 accounts): the
# table's shape, a clean `rebalance check` and rlbench's conservation
# check across the ring change. 25 s (normal) at a load of 14, 128 s
# (sanitizer) at a load of 32.
add_test(NAME bench_rebalance_smoke
         COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/test_bench_rebalance.sh ${CMAKE_BINARY_DIR})
set_tests_properties(bench_rebalance_smoke PROPERTIES TIMEOUT 240 LABELS "bench;smoke"
                     RESOURCE_LOCK cluster_load)

# Smoke run of bench/pending_bench.sh --smoke (4 shards and a router, one
# pair of 1 s runs, --transfer-pending 20 against plain): pending transfers
# across shards among A's, every one posted or voided, both conservation
# checks passed (10-11 s; 9-12 s with sanitizers, at a load of 11-12).
add_test(NAME bench_pending_smoke
         COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/test_bench_pending.sh ${CMAKE_BINARY_DIR})
set_tests_properties(bench_pending_smoke PROPERTIES TIMEOUT 24 LABELS "bench;smoke"
                     RESOURCE_LOCK cluster_load)

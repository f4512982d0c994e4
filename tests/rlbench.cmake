# Smoke run of rlbench (about 3 s): it starts its own shard (WAL synced),
# drives it closed loop for 2 s, then runs the full conservation check;
# exit 0 only if the check passes. rlbench stops the shard and removes its
# data directory whatever happens.
rl_add_test(rlbench_smoke 16 $<TARGET_FILE:rlbench> --spawn-shard $<TARGET_FILE:shard>
            --data ${CMAKE_BINARY_DIR} --accounts 1000 --batch 100 --window 4
            --connections 2 --warmup 0.5 --duration 2 --probe-writes 20 --seed 42
            --timeout-ms 20000)

# Cross-shard transfers: two real shards, and the crash matrix over the
# two-phase failpoints (docs/two-phase.md).
rl_add_unit(test_twophase 730 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_twophase.c
            LIBS rltestkit rlring)
add_dependencies(test_twophase shard)

# Deterministic simulation of two ledgers: storage in memory, a simulated
# network (drop, duplicate, reorder, delay) and crashes; many seeds.
rl_add_unit(test_sim 160 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sim.c LIBS rlshard)

# A credit shard down and a coordinator log of 4,096 entries: ten times its
# capacity in full batches, only busy or aborted, no crash (test_log_full).
rl_add_test(test_twophase_log_full 8 $<TARGET_FILE:test_twophase> log_full)

# The bound of the range drops of the coordinator log and the prepared
# records: a pinned decision and a pinned prepared record survive a
# thousand transfers settled around them and a SIGKILL (test_keys_bound).
rl_add_test(test_twophase_keys_bound 15 $<TARGET_FILE:test_twophase> keys_bound)

# Rings of higher epochs with the same shards, loaded while cross-shard
# transfers flow: each shard keeps its peer connection (test_ring_keep;
# 2.5-3.3 s in the sanitizer build at a load of 8-11).
rl_add_test(test_twophase_ring_keep 10 $<TARGET_FILE:test_twophase> ring_keep)

# Acknowledgement turns write their log deletes without a sync: a SIGKILL
# loses them, the DECIDEs go again and are acknowledged again, nothing is
# applied twice (test_lazy_deletes; 1.6 s, 9.8 s with sanitizers at load 25).
rl_add_test(test_twophase_lazy_deletes 20 $<TARGET_FILE:test_twophase> lazy_deletes)

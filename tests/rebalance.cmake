# Live rebalancing: `rebalance apply` grows a cluster of three shards to
# four and shrinks it back, under load, killed at each of its steps and
# run again; status, check, fix, abort; hostile state files and options;
# every run closed by exactly once, a replay of every id and the
# conservation check (tests/test_rebalance.c, docs/rebalance.md): 35-41 s;
# 60-126 s with sanitizers at a load of 15-30 (beside other tests).
rl_add_unit(test_rebalance 250 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rebalance.c
            ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_kit.c LIBS rlrouterkit)
add_dependencies(test_rebalance shard router rebalance)
set_tests_properties(test_rebalance PROPERTIES RESOURCE_LOCK cluster_load)

# Live rebalancing under load with a nemesis: a reweight (s2 1 -> 0.5), and
# a grow 3 -> 4 while a shard, the router or the tool is SIGKILLed every
# few seconds for 20 s, each kill's phase logged, kills required in the
# copy, the freeze and the handover (tests/test_rebalance_load.c): 32-48 s;
# 58-77 s with sanitizers at a load of 19-30.
rl_add_unit(test_rebalance_load 150 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_load.c
            ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_kit.c LIBS rlrouterkit)
add_dependencies(test_rebalance_load shard router rebalance)
set_tests_properties(test_rebalance_load PROPERTIES RESOURCE_LOCK cluster_load)
# Planning from live load, the model alone: predictions and suggestions on
# fabricated counters, and the shard's table of hot accounts
# (tests/test_rebalance_live_model.c, docs/rebalance.md): 0.03 s; 0.7 s
# with sanitizers.
rl_add_unit(test_rebalance_live_model 10 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_live_model.c
            LIBS rlrebalance_live rlshard)
# Planning from live load against a real cluster: a hot arc and a hot
# account under load (plan --live against the test's own count, suggest,
# the planner's confirmation, apply of the suggested ring under the load,
# check, the conservation check), and hostile servers and options
# (tests/test_rebalance_live.c): 22-24 s; 38 s with sanitizers at a load
# of 10 (58 s at a load of 21 before the apply was added).
rl_add_unit(test_rebalance_live 120 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_live.c
            LIBS rlrouterkit rljsonkit)
add_dependencies(test_rebalance_live shard router rebalance)
set_tests_properties(test_rebalance_live PROPERTIES RESOURCE_LOCK cluster_load)

# Rebalancing after the failures that used to leave a change stuck or a
# retry re-executed: a transfer id reused by two debit accounts whose arcs
# move to one shard, one move aborted; a tool killed after the final chunk;
# a target that fails halfway through its handover; a source holding a migration
# never cleaned up (tests/test_rebalance_repair.c): 18-20 s at first, 3-5.4 s
# since; 6.6-8.6 s with sanitizers; 9.2 s with the stale migration's case.
rl_add_unit(test_rebalance_repair 60 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_repair.c
            ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_kit.c LIBS rlrouterkit rlshard)
add_dependencies(test_rebalance_repair shard router rebalance)
set_tests_properties(test_rebalance_repair PROPERTIES RESOURCE_LOCK cluster_load)

# The cluster-side fence of rebalancing: two plans from two state
# directories (one killed with an arc shipped, one at the same time as
# another), the plan's lease on every shard and the ring comparison before
# every step; a state directory lost twice mid-change and rebuilt by
# recover; every case under the kit's load, closed by exactly once, a
# replay of every id and the conservation check
# (tests/test_rebalance_fence.c, docs/rebalance.md): 13-34 s; 30 s with
# sanitizers at a load of 20.
rl_add_unit(test_rebalance_fence 70 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_fence.c
            ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_kit.c LIBS rlrouterkit)
add_dependencies(test_rebalance_fence shard router rebalance)
set_tests_properties(test_rebalance_fence PROPERTIES RESOURCE_LOCK cluster_load)

# Rebalancing across a fail-over: apply killed at points of a step in
# which a replicated shard takes part (s1 a source: begun, frozen, shipped,
# target_ring, between steps; s4 the target: target_ring), the shard's
# primary SIGKILLed and its standby promoted by `rlctl promote`, apply run
# again to the end of the change; a primary killed while apply runs,
# paused in its step (copying, and before the handover: the step's ring
# then meets the promotion's at its epoch); a primary killed in the copy
# with apply waiting for it (--failover-wait-s), then promoted, or an
# impostor started empty at its endpoint (refused, exit 3), a wait that
# ends (exit 3), and the primary started again (resumed, no fail-over: the
# plan's own last ring); a promotion that misses the
# target holding the step's ring; the state directory deleted after a
# promotion and rebuilt by recover, which follows it; rings that only look
# like a fail-over's, refused. Every
# case under the kit's load, closed by check, one ring everywhere (the
# promoted endpoint, above the plan's epochs), exactly once, a replay of
# every id and the conservation check (tests/test_rebalance_failover.c,
# docs/rebalance.md): 149 s (RelWithDebInfo, 2 cores),
# 166 s with sanitizers.
rl_add_unit(test_rebalance_failover 280 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_failover.c
            ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_kit.c LIBS rlrouterkit)
add_dependencies(test_rebalance_failover shard router rebalance rlctl)
set_tests_properties(test_rebalance_failover PROPERTIES RESOURCE_LOCK cluster_load)

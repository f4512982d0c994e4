# Payment flows (docs/payments.md): linked chains, rule by rule, on a
# ledger in memory, and groups of attempts across shards driven by hand
# (0.5-1.8 s; 8.7-16.8 s with sanitizers at a load of 9-14).
rl_add_unit(test_chains 32 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_chains.c
            ${CMAKE_CURRENT_LIST_DIR}/ledgerkit.c LIBS rlshard)
set_tests_properties(test_chains PROPERTIES ENVIRONMENT RL_SKIP=test_pending_room)
# Its case with the pending table filled to its limit, alone (9.1 s; 27.4 s
# with sanitizers, in a run of the whole suite). Before the pending table's
# index by account: 5.7 s and 14.5 s; the rest is the index keys' writes
# and the audit's sorted walk over the 2,097,152 keys of 1,048,576
# transfers still pending. On a slower machine (2026-12-06), alone: 18.7 s
# before a refused PREPARE waited for its turn's batch, 20.9-22.0 s after;
# 44.8 s with sanitizers (over 48 s beside the rest of the suite).
rl_add_test(test_chains_room 89 test_chains)
set_tests_properties(test_chains_room PROPERTIES ENVIRONMENT RL_CASE=test_pending_room)
# The debit leg of a chain's member at its debit shard, driven by hand on a
# ledger in memory: prepare, commit, abort, restarts, refusals, hostile
# PREPAREs (0.2-1.4 s; 7.0 s with sanitizers at a load of 12).
rl_add_unit(test_debit_legs 14 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_debit_legs.c
            ${CMAKE_CURRENT_LIST_DIR}/ledgerkit.c LIBS rlshard)
# A linked chain in flight when its shard is SIGKILLed, at each point of
# the group commit: all or nothing after the restart, applied once (22 s;
# 38 s with sanitizers beside other tests).
rl_add_unit(test_chains_crash 80 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_chains_crash.c
            LIBS rltestkit rlring)
add_dependencies(test_chains_crash shard)
# Chains through a real router in front of two shards: kept whole, the
# chains no shard can serve answered by the router or refused by the shard,
# the burn rule of a failed chain (its failing member retried alone),
# rlctl's pending, post, void and linked; then chains crediting two and
# three shards, and chains debiting two and three shards, on a cluster of
# three (4.6-5.8 s; 8.9-10.8 s with sanitizers at a load of 9-12).
rl_add_unit(test_chains_router 20 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_chains_router.c
            LIBS rlrouterkit PkgConfig::CJSON)
add_dependencies(test_chains_router shard router rlctl)
# A chain with a debit leg sent again on two real shards: applied before
# (its credit account full since), its member applied alone first, a
# member failing for good at the chain's shard, and one refused busy at its
# debit shard (2.4-3.4 s; 5.6-8.9 s with sanitizers at a load of 6).
rl_add_unit(test_chains_retry 18 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_chains_retry.c
            LIBS rltestkit rlring)
add_dependencies(test_chains_retry shard)
# The crash matrix of linked chains across two and three shards: every
# two-phase crash point on the coordinator and a participant (a credit
# leg's, and a debit leg's; chains of pending kinds), all or nothing after
# recovery, exactly once, strong conservation; members sent again while in
# flight (61 s, 75 s with sanitizers, at a load of 2; before the 11 cases
# of pending kinds: 52-63 s at a load of 10-12, 116 s with sanitizers at a
# load of 11; since: 131-137 s, 193 s with sanitizers, in the full suite).
rl_add_unit(test_chains_across_crash 320 SOURCES
            ${CMAKE_CURRENT_LIST_DIR}/test_chains_across_crash.c LIBS rltestkit rlring)
add_dependencies(test_chains_across_crash shard)
set_tests_properties(test_chains_across_crash PROPERTIES RESOURCE_LOCK cluster_load)
# Pending transfers across shards through a real router in front of two
# shards: reserve on both, post in full or in part, void, expiry by the
# debit shard's void attempt (also while it was down), hostile PREPAREs of
# pending kinds, the expiry's id taken by clients' transfers, a post in
# flight when its transfer falls due, and the crash matrix of a
# cross-shard post, void and expiry (53-60 s, 66 s with sanitizers at a
# load of 5; earlier 97 s with sanitizers at a load of 12-14).
rl_add_unit(test_pending_xshard 200 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pending_xshard.c
            LIBS rlrouterkit PkgConfig::SODIUM)
add_dependencies(test_pending_xshard shard router)
# A bank-style run: two shards SIGKILLed again and again while transfers,
# pending transfers, posts, voids, expiries and linked chains flow; every
# outcome settled, exactly once, and the strong conservation check (6 s of
# load: 10.3 s in all; 13.6 s with sanitizers at a load of 8).
rl_add_unit(test_bank 30 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bank.c
            LIBS rltestkit rlring)
add_dependencies(test_bank shard)
set_tests_properties(test_bank PROPERTIES RESOURCE_LOCK cluster_load)

# Migration: the copy of an arc between two real shards, resumed after
# SIGKILLs, hostile chunks, and the freeze and handover of the arc
# (tests/test_migrate.c, docs/rebalance.md), the whole-piece frozen answer
# migrate_abort, migrate_cleanup and heuristic records, an arc a ring
# gives back (kept, or handed over), and catch-up rounds that send only
# the accounts changed since the round before: 28 s, 84 s with sanitizers
# at a load of 18 (the catch-up case adds about 5 s and 15 s). With the
# target restarted before the final round and the final chunk, ring and
# commit sent back to back: 28-31 s, 58-69 s with sanitizers at a load of
# 10-12.
rl_add_unit(test_migrate 180 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_migrate.c
            LIBS rltestkit rlshard rlring)
add_dependencies(test_migrate shard)

# The crash matrix of a migration: SIGKILL at every migrate.* failpoint,
# with a kill during recovery, in the WAL-held-in-memory mode, with
# transfers pending in the arc (tests/test_migrate_crash.c): 34 s alone,
# 86 s at a load of 12; 84.4 s with sanitizers at a load of 12; with the
# pending transfers, 45 s at a load of 8, 60 s with sanitizers at a load
# of 2-6.
rl_add_unit(test_migrate_crash 160 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_migrate_crash.c
            LIBS rltestkit rlshard rlring)
add_dependencies(test_migrate_crash shard)
set_tests_properties(test_migrate_crash PROPERTIES RESOURCE_LOCK cluster_load)

# Pending transfers move with their accounts: a grow of three shards to
# four through `rebalance apply` with transfers still pending in every
# shape (same-shard, split, cross-shard, joined on one shard), some
# expiring during the change; then a kill of two sources and of the
# target at the migrate failpoints; then a fail-over of a source whose
# final round was shipped (tests/test_migrate_pending.c,
# docs/rebalance.md): 21.3 s, 27.6 s with sanitizers, in a run of the
# whole suite (the first two cases: 14-17 s at a load of 7-11; 20-36 s
# with sanitizers at 8-13).
rl_add_unit(test_migrate_pending 56 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_migrate_pending.c
            ${CMAKE_CURRENT_LIST_DIR}/test_rebalance_kit.c LIBS rlrouterkit)
add_dependencies(test_migrate_pending shard router rebalance rlctl)
set_tests_properties(test_migrate_pending PROPERTIES RESOURCE_LOCK cluster_load)

# Migration: the copy of an arc between two real shards, resumed after
# SIGKILLs, hostile chunks, and the freeze and handover of the arc
# (tests/test_migrate.c, docs/rebalance.md): 10.6 s; 21.8 s with
# sanitizers at a load of 18.
rl_add_unit(test_migrate 45 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_migrate.c
            LIBS rltestkit rlshard rlring)
add_dependencies(test_migrate shard)

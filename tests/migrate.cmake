# Migration: the copy of an arc between two real shards, resumed after
# SIGKILLs, and hostile chunks (tests/test_migrate.c, docs/rebalance.md):
# 10.6 s; about 20 s with sanitizers on a quiet machine.
rl_add_unit(test_migrate 60 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_migrate.c
            LIBS rltestkit rlshard rlring)
add_dependencies(test_migrate shard)

# Live rebalancing: `rebalance apply` grows a cluster of three shards to
# four and shrinks it back, under load, killed at each of its steps and
# run again; status, check, fix, abort; hostile state files and options
# (tests/test_rebalance.c, docs/rebalance.md): 15-27 s; 35-50 s with
# sanitizers at a load of 12-14.
rl_add_unit(test_rebalance 100 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rebalance.c
            LIBS rlrouterkit)
add_dependencies(test_rebalance shard router rebalance)
set_tests_properties(test_rebalance PROPERTIES RESOURCE_LOCK cluster_load)

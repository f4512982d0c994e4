# The change stream of committed transfers (docs/events.md).
# test_events: one secure shard (WAL held in memory until each group commit):
# pages read back in commit order, the PUB notifications (CURVE, a key in
# no role refused, a subscriber that never reads), bad and unknown
# positions, a SIGKILL and a restore from a copy of the data directory;
# then a fail-over of a semi-synchronous and of an asynchronous primary to
# its standby, each waiting out a 1 s lease. 14.7-16.5 s; 16.6-17.2 s with
# sanitizers at load 4-5.
rl_add_unit(test_events 34 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_events.c
            LIBS rltestkit rlring)
add_dependencies(test_events shard)

# test_events_py: the Python consumer (clients/python/examples/rebuild_balances.py)
# against 2 shards and a router under load while shards and the consumer are
# SIGKILLed; the balances it rebuilds equal the shards', conservation.
# Its load runs 8 s: 11.5 s in all; 14.6 s with sanitizers at load 15.
add_test(NAME test_events_py
         COMMAND ${RL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_events_py.py ${CMAKE_BINARY_DIR}
                 ${PROJECT_SOURCE_DIR})
set_tests_properties(test_events_py PROPERTIES
    TIMEOUT 30
    FIXTURES_REQUIRED pyclient
    RESOURCE_LOCK cluster_load)

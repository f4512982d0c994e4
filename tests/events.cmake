# The change stream of committed transfers (docs/events.md).
# test_events: one secure shard (WAL held in memory until each group commit):
# pages read back in commit order, the PUB notifications (CURVE, a key in
# no role refused, a subscriber that never reads), bad and unknown
# positions, a SIGKILL and a restore from a copy of the data directory.
rl_add_unit(test_events 40 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_events.c
            LIBS rltestkit rlring)
add_dependencies(test_events shard)

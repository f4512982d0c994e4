# The operator's side of replication (docs/replication.md): rlctl promote,
# degrade and status run as the real program against a real primary and
# standby, with bad input (a standby never seeded, a key without the admin
# role, the wrong shard, bad usage) and a stalled primary seen by status
# (tests/test_repl_rlctl.c). 7-9 s (normal) and 10 s (sanitizers) beside
# other tests at a load of 12.
rl_add_unit(test_repl_rlctl 30 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_repl_rlctl.c
            LIBS rltestkit rljsonkit)
add_dependencies(test_repl_rlctl shard rlctl)
set_tests_properties(test_repl_rlctl PROPERTIES RESOURCE_LOCK cluster_load)


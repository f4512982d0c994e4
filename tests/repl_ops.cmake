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

# Smoke runs of bench/repl_bench.sh --smoke (every replication figure: a
# batch 1000 round alone and semi-synchronous, batch 1, catch-up, promote
# against a restart, a backup) and bench/backup_bench.sh --smoke (cluster
# backups under load, a restore, rlbench's check): each script fails on a
# failed run, and tests/test_bench_repl.sh checks that every figure comes
# out. In the build without sanitizers only: they measure, and the same
# code runs under the sanitizers in test_replication, test_repl_rlctl and
# test_backup. Measured: repl 19 s at a load of 5, 32-47 s beside other
# tests at a load of 12, 29 s at a load of 6 with the late promotion's
# round; backup 15 s at a load of 12.
if(NOT RL_SANITIZE)
    add_test(NAME bench_repl_smoke
             COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/test_bench_repl.sh repl ${CMAKE_BINARY_DIR})
    set_tests_properties(bench_repl_smoke PROPERTIES TIMEOUT 90 LABELS "bench;smoke"
                         RESOURCE_LOCK cluster_load)
    add_test(NAME bench_backup_smoke
             COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/test_bench_repl.sh backup ${CMAKE_BINARY_DIR})
    set_tests_properties(bench_backup_smoke PROPERTIES TIMEOUT 40 LABELS "bench;smoke"
                         RESOURCE_LOCK cluster_load)
endif()

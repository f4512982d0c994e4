# Backups: a cluster backup under load restored into a fresh cluster, an
# incremental second backup, a damaged backup, and hostile input
# (tests/test_backup.c, docs/backup.md).
rl_add_unit(test_backup 48 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_backup.c
            LIBS rltestkit rlshard rlring rljsonkit)
add_dependencies(test_backup shard rlctl)
set_tests_properties(test_backup PROPERTIES RESOURCE_LOCK cluster_load)

# Backups: a cluster backup under load restored into a fresh cluster, a
# cut between two pieces of a checkpoint's accounts, an incremental second
# backup, a damaged backup, hostile input, a cut listed after its release,
# and backup-purge (tests/test_backup.c, docs/backup.md).
# 19 s (normal) and 37 s (sanitizer) at a load of 16-18 before the cut
# between pieces; 11.8 s and 21.6 s at a load of 2 with it.
rl_add_unit(test_backup 80 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_backup.c
            LIBS rltestkit rlshard rlring rljsonkit)
add_dependencies(test_backup shard rlctl)
set_tests_properties(test_backup PROPERTIES RESOURCE_LOCK cluster_load)

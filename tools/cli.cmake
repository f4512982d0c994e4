# rlctl: the operator CLI (docs/cli.md). tools/cluster.sh and tools/demo.sh
# drive it; tests/cli.cmake registers its tests.
add_executable(rlctl ${CMAKE_CURRENT_LIST_DIR}/rlctl.c ${CMAKE_CURRENT_LIST_DIR}/rlctl_text.c
               ${CMAKE_CURRENT_LIST_DIR}/rlctl_records.c ${CMAKE_CURRENT_LIST_DIR}/rlctl_cluster.c
               ${CMAKE_CURRENT_LIST_DIR}/rlctl_keys.c ${CMAKE_CURRENT_LIST_DIR}/rlctl_replica.c
               ${CMAKE_CURRENT_LIST_DIR}/rlctl_top.c ${CMAKE_CURRENT_LIST_DIR}/rlctl_backup.c
               ${CMAKE_CURRENT_LIST_DIR}/rlctl_reverse.c)
target_link_libraries(rlctl PRIVATE rljsonkit rlcommon rlring rlproc PkgConfig::ROCKSDB)

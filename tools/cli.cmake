# rlctl: the operator CLI (docs/cli.md). tools/cluster.sh and tools/demo.sh
# drive it; tests/cli.cmake registers its tests.
add_executable(rlctl ${CMAKE_CURRENT_LIST_DIR}/rlctl.c)
target_link_libraries(rlctl PRIVATE rlcommon rlring)

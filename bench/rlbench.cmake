# rlbench: the high-volume client and its conservation check (bench/README.md, "Harness").
add_executable(rlbench ${CMAKE_CURRENT_LIST_DIR}/rlbench.c)
target_link_libraries(rlbench PRIVATE rljsonkit rlcommon rlring m)
add_dependencies(rlbench shard)

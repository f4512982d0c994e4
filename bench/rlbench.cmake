# rlbench: the high-volume client and its conservation check (bench/README.md, "Harness").
add_executable(rlbench ${CMAKE_CURRENT_LIST_DIR}/rlbench.c ${CMAKE_CURRENT_LIST_DIR}/rlbench_workload.c
               ${CMAKE_CURRENT_LIST_DIR}/rlbench_engine.c ${CMAKE_CURRENT_LIST_DIR}/rlbench_report.c)
target_link_libraries(rlbench PRIVATE rlbenchkit rljsonkit rlcommon rlring m)
add_dependencies(rlbench shard)

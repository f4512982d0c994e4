# rebalance: the ring planner (docs/rebalance.md): init and plan.
add_executable(rebalance ${CMAKE_CURRENT_LIST_DIR}/rebalance.c)
target_link_libraries(rebalance PRIVATE rljsonkit rlring rlcommon)

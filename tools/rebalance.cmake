# rebalance: the ring planner and the driver of live rebalancing
# (docs/rebalance.md): init, plan, apply, status, check, fix, abort.
add_executable(rebalance ${CMAKE_CURRENT_LIST_DIR}/rebalance.c ${CMAKE_CURRENT_LIST_DIR}/rebalance_state.c
               ${CMAKE_CURRENT_LIST_DIR}/rebalance_apply.c)
target_link_libraries(rebalance PRIVATE rljsonkit rlring rlcommon)

# rebalance: the ring planner and the driver of live rebalancing
# (docs/rebalance.md): init, plan (also from live load), suggest, apply,
# status, check, fix, abort.
# rlrebalance_live: the load model of plan --live and suggest, pure (no
# network), so that its unit test links it alone.
add_library(rlrebalance_live STATIC ${CMAKE_CURRENT_LIST_DIR}/rebalance_live.c)
target_include_directories(rlrebalance_live PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(rlrebalance_live PUBLIC rlring rlcommon m)
add_executable(rebalance ${CMAKE_CURRENT_LIST_DIR}/rebalance.c ${CMAKE_CURRENT_LIST_DIR}/rebalance_state.c
               ${CMAKE_CURRENT_LIST_DIR}/rebalance_apply.c ${CMAKE_CURRENT_LIST_DIR}/rebalance_live_cmd.c)
target_link_libraries(rebalance PRIVATE rlrebalance_live rljsonkit rlring rlcommon)

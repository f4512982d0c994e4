# The stateless router (docs/router.md): splits client requests by owner
# shard, sends the pieces concurrently, merges the answers.
add_executable(router ${CMAKE_CURRENT_LIST_DIR}/main.c ${CMAKE_CURRENT_LIST_DIR}/clients.c
                      ${CMAKE_CURRENT_LIST_DIR}/router.c ${CMAKE_CURRENT_LIST_DIR}/shards.c
                      ${CMAKE_CURRENT_LIST_DIR}/router_metrics.c)
target_link_libraries(router PRIVATE rlring rlcommon)

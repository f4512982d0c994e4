# Router integration tests: real shards behind real routers on 127.0.0.1,
# and the client library's retry helper and pipelined window.
rl_add_unit(test_router 180 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_router.c
            LIBS rltestkit rlring)
add_dependencies(test_router shard router)

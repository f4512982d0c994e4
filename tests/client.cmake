# The client library's admin calls and fan-outs, against real shards on
# 127.0.0.1 (common/client.h, docs/client.md). About 2.5-5.4 s, up to
# 10.3 s with sanitizers on a loaded machine: the timeout is twice that.
rl_add_unit(test_client_admin 20 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_client_admin.c
            LIBS rltestkit rlring)
add_dependencies(test_client_admin shard)

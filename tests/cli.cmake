# The operator CLI (rlctl), the Python client of the wire protocol, and the
# local cluster launcher (docs/cli.md, docs/cluster.md). ctest does not
# build targets: these tests run the programs of the build they belong to,
# so they depend on the programs being part of it (below).
add_custom_target(cli_test_programs ALL)
add_dependencies(cli_test_programs shard rlctl rebalance)
if(TARGET router)
    add_dependencies(cli_test_programs router)
endif()

# Hex vectors of docs/protocol.md, then a live shard, then (once the router
# is built) a router in front of two shards, all through the Python client
# package as installed by the pyclient_venv fixture (tests/pyclient.cmake).
add_test(NAME test_protocol_py
         COMMAND ${RL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_protocol.py)
set_tests_properties(test_protocol_py PROPERTIES
    TIMEOUT 21
    FIXTURES_REQUIRED pyclient
    ENVIRONMENT "RL_BIN_DIR=${CMAKE_BINARY_DIR};RL_PROTOCOL_MD=${PROJECT_SOURCE_DIR}/docs/protocol.md")

# tools/cluster.sh and rlctl end to end: start, use, stop, restart, stop.
# Exit 77 (skipped) while the router program is not part of the build.
add_test(NAME test_cluster_sh
         COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cluster.sh ${CMAKE_BINARY_DIR})
set_tests_properties(test_cluster_sh PROPERTIES
    TIMEOUT 165
    SKIP_RETURN_CODE 77)

# rlctl top against a 2-shard cluster under rlbench load, then with a shard
# killed; its usage errors; a second SIGINT while its output is suspended
# (docs/cli.md). 12 s; 18 s under the sanitizers beside other tests.
add_test(NAME test_rlctl_top
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_rlctl_top.py ${CMAKE_BINARY_DIR})
set_tests_properties(test_rlctl_top PROPERTIES TIMEOUT 35 RESOURCE_LOCK cluster_load)

# The JSON output of the tools and benchmarks (tools/jsonkit.h).
rl_add_unit(test_jsonkit 10 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_jsonkit.c LIBS rljsonkit)

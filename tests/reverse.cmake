# Reversals (docs/payments.md, common/reversal.h): the client library and
# rlctl reverse against 2 real shards behind a real router, racing callers
# included, with the conservation check.
rl_add_unit(test_reverse 60 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_reverse.c LIBS rlrouterkit PkgConfig::CJSON)
add_dependencies(test_reverse shard router rlctl)

# The same rules through the Python client (ringledger.reversal) against
# tools/cluster.sh (2 shards, a router, CURVE): the id vectors of
# docs/payments.md, bad input, the refusals, conservation.
add_test(NAME test_reverse_py
         COMMAND ${RL_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_reverse_py.py ${CMAKE_BINARY_DIR})
set_tests_properties(test_reverse_py PROPERTIES TIMEOUT 60 FIXTURES_REQUIRED pyclient)

# Operations (docs/logging.md, docs/config.md, docs/deploy.md): the JSON
# logs of a real shard and router (0.6 s; 4 s with sanitizers beside other
# tests), config files of both programs (3 s; 18 s with sanitizers beside
# other tests, 26 starts of a program).
rl_add_unit(test_log_json 12 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_log_json.c
            LIBS rlrouterkit PkgConfig::CJSON)
add_dependencies(test_log_json shard router)

rl_add_unit(test_config 40 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_config.c LIBS rlrouterkit)
add_dependencies(test_config shard router)

# The systemd units (systemd-analyze verify) and the example config files
# (--check-config) (0.7 s; 2.8 s with sanitizers).
add_test(NAME test_deploy COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/test_deploy.sh ${PROJECT_SOURCE_DIR}
                                  ${CMAKE_BINARY_DIR})
set_tests_properties(test_deploy PROPERTIES TIMEOUT 10)

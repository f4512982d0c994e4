# Shard integration tests: real shard processes on 127.0.0.1.
add_library(rltestkit STATIC ${CMAKE_CURRENT_SOURCE_DIR}/testkit.c)
target_include_directories(rltestkit PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(rltestkit PUBLIC rlharness rlcommon rlring PkgConfig::CMOCKA)

rl_add_unit(test_shard 300 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_shard.c
            LIBS rltestkit rlring)
add_dependencies(test_shard shard)
rl_add_unit(test_shard_crash 600 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_shard_crash.c
            LIBS rltestkit rlring)
add_dependencies(test_shard_crash shard)
rl_add_unit(test_idmap 60 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_idmap.c LIBS rlshard)

# Smoke run of the shard benchmark (at most a few seconds).
rl_add_test(shard_bench_quick 120 $<TARGET_FILE:shard_bench> --quick --batches 1,100
            --data ${CMAKE_BINARY_DIR}/bench-smoke)

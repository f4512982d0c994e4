# The test harness (processes, private directories, ports) and the tests of
# the harness itself and of the failpoints.
#
# rlharness is linked by every integration test. It needs nothing from
# rlcommon but its process core (rlproc, common/proc.c, shared with the
# benchmarks), so a test links both without duplicate symbols.
add_library(rlharness STATIC ${CMAKE_CURRENT_SOURCE_DIR}/harness.c)
target_include_directories(rlharness PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(rlharness PRIVATE RL_HARNESS_BIN_DIR="${PROJECT_BINARY_DIR}")
target_link_libraries(rlharness PUBLIC rlproc Threads::Threads)

# A child for test_harness to spawn.
add_executable(helper_child ${CMAKE_CURRENT_SOURCE_DIR}/helper_child.c)

# test_failpoint compiles failpoint.c and log.c itself, so that it needs
# none of the rest of rlcommon.
rl_add_unit(test_failpoint 10
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_failpoint.c
            ${PROJECT_SOURCE_DIR}/common/failpoint.c
            ${PROJECT_SOURCE_DIR}/common/log.c
    LIBS rlharness Threads::Threads)
target_include_directories(test_failpoint PRIVATE ${PROJECT_SOURCE_DIR}/common)

# test_log: escaping and rate limits of log lines; log.c compiled in
# (0.7 s, sleeps included, in both builds).
rl_add_unit(test_log 4
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_log.c ${PROJECT_SOURCE_DIR}/common/log.c
    LIBS Threads::Threads PkgConfig::CJSON)
target_include_directories(test_log PRIVATE ${PROJECT_SOURCE_DIR}/common)

rl_add_unit(test_harness 21
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_harness.c
    LIBS rlharness)
target_compile_definitions(test_harness PRIVATE HELPER_CHILD_PATH="$<TARGET_FILE:helper_child>")
add_dependencies(test_harness helper_child)

# Fuzz targets (tests/fuzz/, docs/testing.md "Fuzzing"): one libFuzzer
# target per decoder of bytes from outside, each a fuzz_NAME.c that
# defines LLVMFuzzerTestOneInput and checks properties beyond "no crash".
#
# RL_FUZZ=ON (a build of its own, with clang): fuzz_NAME, the libFuzzer
#   binary under AddressSanitizer and UBSan; ctest runs each for
#   RL_FUZZ_SECONDS from the committed corpus (tests fuzz_NAME_run, label
#   fuzz). New inputs go to <build>/fuzz-corpus/NAME, crashes to
#   <build>/fuzz-artifacts/NAME/.
# Otherwise (the normal and the sanitizer builds, any compiler):
#   fuzz_replay_NAME, the same target behind replay_main.c; ctest replays
#   the committed corpus tests/fuzz/corpus/NAME (tests fuzz_replay_NAME).
set(RL_FUZZ_DIR ${PROJECT_SOURCE_DIR}/tests/fuzz)
set(RL_FUZZ_SECONDS 20 CACHE STRING "seconds each fuzz target runs in ctest (RL_FUZZ=ON)")
set(RL_FUZZ_RING_SOURCES ${PROJECT_SOURCE_DIR}/ring/ring.c ${PROJECT_SOURCE_DIR}/ring/ring_valid.c
    ${PROJECT_SOURCE_DIR}/ring/ring_text.c ${PROJECT_SOURCE_DIR}/ring/ring_blob.c
    ${PROJECT_SOURCE_DIR}/ring/ring_diff.c)

# rl_fuzz_target(NAME SOURCES sources... LIBS libs...): the sources under
# test are compiled into the target, so that libFuzzer instruments them.
function(rl_fuzz_target name)
    cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
    if(RL_FUZZ)
        set(exe fuzz_${name})
        add_executable(${exe} ${RL_FUZZ_DIR}/fuzz_${name}.c ${F_SOURCES})
        target_compile_options(${exe} PRIVATE -fsanitize=fuzzer,address,undefined
                               -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
        target_link_options(${exe} PRIVATE -fsanitize=fuzzer,address,undefined)
        set(run_corpus ${CMAKE_BINARY_DIR}/fuzz-corpus/${name})
        set(artifacts ${CMAKE_BINARY_DIR}/fuzz-artifacts/${name})
        add_test(NAME fuzz_${name}_run
                 COMMAND sh -c "mkdir -p \"$2\" \"$3\" && exec \"$0\" -max_total_time=$4 \
-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=\"$3/\" \"$2\" \"$1\""
                         $<TARGET_FILE:${exe}> ${RL_FUZZ_DIR}/corpus/${name} ${run_corpus}
                         ${artifacts} ${RL_FUZZ_SECONDS})
        math(EXPR timeout_s "${RL_FUZZ_SECONDS} + 20")
        set_tests_properties(fuzz_${name}_run PROPERTIES LABELS fuzz TIMEOUT ${timeout_s}
                             ENVIRONMENT "LSAN_OPTIONS=suppressions=${RL_FUZZ_DIR}/lsan.supp")
    else()
        set(exe fuzz_replay_${name})
        add_executable(${exe} ${RL_FUZZ_DIR}/fuzz_${name}.c ${RL_FUZZ_DIR}/replay_main.c
                       ${F_SOURCES})
        add_test(NAME fuzz_replay_${name} COMMAND ${exe} ${RL_FUZZ_DIR}/corpus/${name})
        set_tests_properties(fuzz_replay_${name} PROPERTIES TIMEOUT 10
                             ENVIRONMENT "LSAN_OPTIONS=suppressions=${RL_FUZZ_DIR}/lsan.supp")
    endif()
    target_include_directories(${exe} PRIVATE ${RL_FUZZ_DIR} ${PROJECT_SOURCE_DIR}/common
                               ${PROJECT_SOURCE_DIR}/ring)
    target_link_libraries(${exe} PRIVATE ${F_LIBS})
endfunction()

rl_fuzz_target(codec SOURCES ${PROJECT_SOURCE_DIR}/common/codec.c
               ${PROJECT_SOURCE_DIR}/common/proto.c)
rl_fuzz_target(chunk SOURCES ${PROJECT_SOURCE_DIR}/common/chunk.c ${PROJECT_SOURCE_DIR}/common/codec.c
               ${PROJECT_SOURCE_DIR}/common/proto.c)
rl_fuzz_target(ring_blob SOURCES ${RL_FUZZ_RING_SOURCES} LIBS PkgConfig::XXHASH m)
rl_fuzz_target(ring_text SOURCES ${RL_FUZZ_RING_SOURCES} LIBS PkgConfig::XXHASH m)
rl_fuzz_target(config SOURCES ${PROJECT_SOURCE_DIR}/common/failpoint.c
               ${PROJECT_SOURCE_DIR}/common/log.c ${PROJECT_SOURCE_DIR}/common/keys.c
               ${PROJECT_SOURCE_DIR}/common/options.c ${PROJECT_SOURCE_DIR}/common/config.c
               ${RL_FUZZ_RING_SOURCES}
               LIBS PkgConfig::XXHASH PkgConfig::CZMQ PkgConfig::ZMQ m Threads::Threads)

# The generator of the seed corpus (run by hand: fuzz_make_corpus
# tests/fuzz/corpus); not in the fuzz build, which has no rlcommon.
if(NOT RL_FUZZ)
    add_executable(fuzz_make_corpus ${RL_FUZZ_DIR}/make_corpus.c)
    target_link_libraries(fuzz_make_corpus PRIVATE rlcommon rlring)
endif()

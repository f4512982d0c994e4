# test_codec: the wire codec, the names of every code, and the hex vectors
# of docs/protocol.md. Built twice: with the memcpy codec of little-endian
# hosts, and with the portable field-by-field codec (RL_CODEC_PORTABLE), so
# that both are held to the same vectors. codec.c and proto.c are compiled
# in directly: the test needs nothing else of rlcommon.
foreach(variant test_codec test_codec_portable)
    rl_add_unit(${variant} 10
        SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_codec.c
                ${PROJECT_SOURCE_DIR}/common/codec.c
                ${PROJECT_SOURCE_DIR}/common/proto.c
        LIBS)
    target_include_directories(${variant} PRIVATE ${PROJECT_SOURCE_DIR}/common)
    target_compile_definitions(${variant} PRIVATE
        RL_PROTOCOL_MD_PATH="${PROJECT_SOURCE_DIR}/docs/protocol.md"
        RL_PROTO_H_PATH="${PROJECT_SOURCE_DIR}/common/proto.h")
endforeach()
target_compile_definitions(test_codec_portable PRIVATE RL_CODEC_PORTABLE=1)

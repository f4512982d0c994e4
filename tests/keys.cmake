# CURVE keys and role key sets (common/keys.h, docs/security.md): key
# generation, the secret file's mode check, and key sets that follow their
# folders. Well under a second.
rl_add_unit(test_keys 10 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_keys.c LIBS rlcommon)

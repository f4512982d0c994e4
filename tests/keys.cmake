# CURVE keys and role key sets (common/keys.h, docs/security.md): key
# generation, the secret file's mode check, and key sets that follow their
# folders. Well under a second.
rl_add_unit(test_keys 10 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_keys.c LIBS rlcommon)

# Authentication and roles against a real shard and router: every operation
# from every role, the forged PREPARE + DECIDE refused at the handshake (no
# key, unknown key) and as unauthorized (client key), a key removed on an
# open connection.
rl_add_unit(test_roles 20 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_roles.c LIBS rlrouterkit)
add_dependencies(test_roles shard router)

# Payment flows (docs/payments.md): linked chains, rule by rule, on a
# ledger in memory.
rl_add_unit(test_chains 30 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_chains.c LIBS rlshard)

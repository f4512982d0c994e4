# Router integration tests: real shards behind real routers on 127.0.0.1
# (tests/routerkit.c starts them), one program per concern. Each TIMEOUT is
# twice the program's longest measured time (sanitizer build, ctest -j2, on a
# busy 2-core machine).
add_library(rlrouterkit STATIC ${CMAKE_CURRENT_LIST_DIR}/routerkit.c)
target_link_libraries(rlrouterkit PUBLIC rltestkit rlring)

# Routing, splitting and merging, the ring refresh, the client library (12.9 s).
rl_add_unit(test_router_routing 35 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_router_routing.c
            LIBS rlrouterkit)
add_dependencies(test_router_routing shard router)
# Deadlines, stopped and killed shards, routers killed mid-load and mid
# two-phase, both routers down at once (20.4 s).
rl_add_unit(test_router_faults 75 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_router_faults.c
            LIBS rlrouterkit)
add_dependencies(test_router_faults shard router)
# Bad input through raw frames, bad deadlines, the run-time deadline check,
# envelopes counted in the pending bound, a shard's oversize reply
# (10 s; 16-18 s with sanitizers).
rl_add_unit(test_router_input 36 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_router_input.c
            LIBS rlrouterkit)
add_dependencies(test_router_input shard router)
# A retry across a ring change: the new owner of an arc whose data has not
# arrived answers frozen, never applies, never burns the id; the set of arcs
# not received survives a restart; the router retries frozen until its
# deadline (an arc frozen by the migration operations), a piece of 8 records
# as often as one; conservation (5.7 to 7.1 s at load 15-20, most of it the
# freeze and the deadlines waited out; 11.1 to 12.8 s with sanitizers at
# load 15-20; with the piece of 8 records, 6.7 s and 9.2 s at load 3).
rl_add_unit(test_router_arcs 25 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_router_arcs.c
            LIBS rlrouterkit)
add_dependencies(test_router_arcs shard router)
# Rings from mistaken or hostile senders (docs/security.md, "Rings"): the
# ring freeze (epoch 2^64 - 1, refused, also after a restart, and by the
# router) and the ring hijack from every kind of key, each ending with the
# conservation check (3.8 s; 7.1 s with sanitizers at load 11, 13.7 s at
# load 19).
rl_add_unit(test_ring_guard 30 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_ring_guard.c
            LIBS rlrouterkit)
add_dependencies(test_ring_guard shard router)
# A client that never reads its replies, against a router with the smallest
# --reply-queue-bytes: its peak memory stays bounded, drops are counted,
# another client is served, conservation (docs/security.md, "Reply queues")
# (2.5 s; 3.2 s with sanitizers at load 2.3).
rl_add_unit(test_router_reply_bound 10 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_router_reply_bound.c
            LIBS rlrouterkit)
add_dependencies(test_router_reply_bound shard router)
set_tests_properties(test_router_reply_bound PROPERTIES RESOURCE_LOCK cluster_load)

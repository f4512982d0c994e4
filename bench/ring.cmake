# ring_bench: lookup rate, balance and movement of the ring (bench/README.md, "Ring").
add_executable(ring_bench ${CMAKE_CURRENT_LIST_DIR}/ring_bench.c)
target_link_libraries(ring_bench PRIVATE rlring)

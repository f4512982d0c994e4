# shard_bench: same-shard transfers against the raw RocksDB ceiling (bench/README.md, "Shard").
add_executable(shard_bench ${CMAKE_CURRENT_LIST_DIR}/shard_bench.c)
target_link_libraries(shard_bench PRIVATE rlbenchkit rljsonkit rlcommon PkgConfig::ROCKSDB)
add_dependencies(shard_bench shard)

# Metrics (docs/metrics.md): the registry and the HTTP endpoints in one
# process; the alert rules' unit tests; a live cluster checked with the real
# Prometheus tools. A missing promtool or prometheus fails, never skips.
rl_add_unit(test_metrics 10 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_metrics.c
            LIBS rlcommon rlproc)

# `promtool check rules` and `promtool test rules`: every alert fires on its
# bad series, and only then.
add_test(NAME test_alert_rules
         COMMAND promtool test rules ${PROJECT_SOURCE_DIR}/ops/prometheus/alerts_test.yml)
add_test(NAME test_alert_rules_check
         COMMAND promtool check rules ${PROJECT_SOURCE_DIR}/ops/prometheus/rules.yml
                 ${PROJECT_SOURCE_DIR}/ops/prometheus/alerts.yml)
set_tests_properties(test_alert_rules test_alert_rules_check PROPERTIES TIMEOUT 16)

# A 2-shard cluster and a router under load: promtool check metrics on every
# endpoint, the dashboard's and rules' metrics in the live output, and
# Prometheus scraping it until the expected series appear; then the change
# stream's and the payment flows' counters (11 s measured on a quiet machine,
# 26 s at a load of 15-20; 13.1 s, and 13.6 s with sanitizers, at a load of 8-13
# with the payment flows' 2 s).
add_test(NAME test_metrics_live
         COMMAND ${RL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_metrics_live.py ${CMAKE_BINARY_DIR})
set_tests_properties(test_metrics_live PROPERTIES TIMEOUT 52 RESOURCE_LOCK cluster_load
                     FIXTURES_REQUIRED pyclient)

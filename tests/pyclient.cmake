# The Python client package (clients/python, docs/client-python.md).
# pyclient_venv installs it into BUILD/pyclient/venv, offline, as its README
# says; every Python test that uses it runs with that venv's python
# (${RL_PYTHON}) and requires the fixture, so `ctest -R test_protocol_py`
# installs it first. A missing tool (python3-venv, python3-pip,
# python3-setuptools, python3-zmq) fails the fixture, and so its tests.
# Measured on the loaded 2-core machine: the install takes about 2 s of CPU
# (pip, then setuptools twice in children: metadata, wheel), 8-21 s of wall
# time at a load of 2-10 and 46-50 s at a load of 15-17; test_pyclient 7 s
# normal, 10 s sanitizer (12 s at that load).
set(RL_PYTHON ${CMAKE_BINARY_DIR}/pyclient/venv/bin/python)
add_test(NAME pyclient_venv
         COMMAND /bin/sh ${CMAKE_CURRENT_SOURCE_DIR}/pyclient_venv.sh ${CMAKE_BINARY_DIR}
                 ${PROJECT_SOURCE_DIR})
set_tests_properties(pyclient_venv PROPERTIES TIMEOUT 100 FIXTURES_SETUP pyclient)

# The package against a real cluster (tools/cluster.sh: 2 shards, a router,
# CURVE): typed records, batches split, retries with the same ids, keys
# from files and from the ring, clear exceptions, the hex vectors and code
# tables of docs/protocol.md, the asyncio client, conservation.
add_test(NAME test_pyclient
         COMMAND ${RL_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_pyclient.py ${CMAKE_BINARY_DIR})
set_tests_properties(test_pyclient PROPERTIES
    TIMEOUT 25
    FIXTURES_REQUIRED pyclient
    ENVIRONMENT "RL_PROTOCOL_MD=${PROJECT_SOURCE_DIR}/docs/protocol.md")

# Remote (TCP) manager clients; included by tests/CMakeLists.txt.
mproc_add_test(manager/manager_remote_test.cc TIMEOUT 120)
# The serializer choice (portable text form, mismatch refusal); parity 7.3.
mproc_add_test(manager/manager_serializer_test.cc TIMEOUT 120)

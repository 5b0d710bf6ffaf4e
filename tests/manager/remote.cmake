# Remote (TCP) manager clients; included by tests/CMakeLists.txt.
mproc_add_test(manager/manager_remote_test.cc TIMEOUT 120)

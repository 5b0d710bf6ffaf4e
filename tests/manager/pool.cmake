# The manager-hosted Pool (PoolProxy, managed::Pool); included by tests/CMakeLists.txt.
mproc_add_test(manager/manager_pool_test.cc TIMEOUT 180)

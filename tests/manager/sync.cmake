# Manager queues and synchronization (helper syncq); included by tests/CMakeLists.txt.
mproc_add_test(manager/manager_lock_test.cc TIMEOUT 120)
mproc_add_test(manager/manager_semaphore_test.cc TIMEOUT 120)
mproc_add_test(manager/manager_event_test.cc TIMEOUT 120)
mproc_add_test(manager/manager_condition_test.cc TIMEOUT 120)
mproc_add_test(manager/manager_barrier_test.cc TIMEOUT 120)
mproc_add_test(manager/manager_queue_test.cc TIMEOUT 120)
mproc_add_test(examples/manager_queue_pool_test.cc TIMEOUT 120 LABELS example)
add_dependencies(manager_queue_pool_test manager_queue_pool)

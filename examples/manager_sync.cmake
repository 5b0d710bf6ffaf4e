# Manager queues and synchronization (helper syncq); included by examples/CMakeLists.txt.
mproc_add_example(manager_queue_pool)

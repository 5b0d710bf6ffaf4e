# Pool per-task timeouts, cancel, futures-style waiting, forced shutdown (issue 9).
mproc_add_test(pool/pool_timeout_test.cc TIMEOUT 120)
mproc_add_test(pool/pool_wait_test.cc TIMEOUT 120)
mproc_add_test(examples/pool_timeouts_test.cc TIMEOUT 120 LABELS example)

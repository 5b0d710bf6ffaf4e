// mproc/mproc.h — everything mproc offers, in one include.
//
//   #include "mproc/mproc.h"
//   namespace mp = mproc;
#pragma once

#include "mproc/connection.h"
#include "mproc/deadline.h"
#include "mproc/envelope.h"
#include "mproc/errors.h"
#include "mproc/init.h"
#include "mproc/listener.h"
#include "mproc/log.h"
#include "mproc/manager.h"
#include "mproc/object.h"
#include "mproc/pool.h"
#include "mproc/process.h"
#include "mproc/proxy.h"
#include "mproc/queue.h"
#include "mproc/serialize.h"
#include "mproc/shared_memory.h"
#include "mproc/sharedctypes.h"
#include "mproc/shm.h"
#include "mproc/start_method.h"
#include "mproc/sync.h"
#include "mproc/sync_manager.h"
#include "mproc/task.h"
#include "mproc/wait.h"

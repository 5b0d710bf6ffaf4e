// mproc/mproc.h — everything mproc offers, in one include.
//
//   #include "mproc/mproc.h"
//   namespace mp = mproc;
#pragma once

#include "mproc/deadline.h"
#include "mproc/errors.h"
#include "mproc/log.h"
#include "mproc/shm.h"

// weft — Go's concurrency model for C++20. Umbrella header: everything in layers 1-2.
#pragma once

#include "actor.hpp"
#include "channel.hpp"
#include "context.hpp"
#include "future.hpp"
#include "mutex.hpp"
#include "rate_limiter.hpp"
#include "registry.hpp"
#include "scheduler.hpp"
#include "select.hpp"
#include "semaphore.hpp"
#include "spawn_blocking.hpp"
#include "sync.hpp"
#include "task.hpp"
#include "task_group.hpp"
#include "time.hpp"
#include "version.hpp"

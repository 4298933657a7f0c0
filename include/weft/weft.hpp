// weft — Go's concurrency model for C++20. Umbrella header: everything in layers 1-2.
#pragma once

#include "channel.hpp"
#include "scheduler.hpp"
#include "select.hpp"
#include "sync.hpp"
#include "task.hpp"
#include "task_group.hpp"
#include "time.hpp"

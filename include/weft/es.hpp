// weft::es umbrella: the event-sourcing layer without optional dependencies — events and the
// store contract, memory_store, subscriptions, deciders, codecs and upcasters, the aggregate
// service, projections and in-memory read models. sqlite_store.hpp, sqlite_read_model.hpp
// (libsqlite3) and json_codec.hpp (nlohmann-json) are included on their own.
#pragma once

#include "es/aggregate_service.hpp"
#include "es/codec.hpp"
#include "es/decider.hpp"
#include "es/event.hpp"
#include "es/memory_store.hpp"
#include "es/projection.hpp"
#include "es/read_model.hpp"
#include "es/store.hpp"
#include "es/subscription.hpp"

// weft::es::codec — how typed events become what a store keeps (a type name, a schema version
// and payload bytes) and back, and upcasters, which turn an old shape of an event into the
// current one while reading, so stored history is never rewritten.
//
//   weft::es::upcasters up;
//   up.add("deposited", 1, [](weft::es::encoded_event e) {   // v1 had no currency field
//       e.payload = add_field(e.payload, "currency", "EUR");
//       e.schema_version = 2;
//       return e;
//   });
//
// A codec for events of type E is any type with
//   encoded_event encode(const E&) const;      and      E decode(const recorded_event&) const;
// json_codec.hpp has a ready one for std::variant events (needs nlohmann-json).
#pragma once

#include "event.hpp"

#include <concepts>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

namespace weft::es {

// An event as bytes, with the name and the schema version that say how to read them.
struct encoded_event {
    std::string type{};
    int schema_version = 1;
    std::string payload{};
};

template <class C, class E>
concept codec = requires(const C& c, const E& e, const recorded_event& r) {
    { c.encode(e) } -> std::same_as<encoded_event>;
    { c.decode(r) } -> std::same_as<E>;
};

// A stored event this program cannot read: an unknown type name, a schema version newer than
// it knows, or a payload that does not parse. The message names the event.
class decode_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

inline std::string describe(const recorded_event& e) {
    return "event " + e.type + " v" + std::to_string(e.schema_version) + " at " + e.stream + "@" +
           std::to_string(e.version) + " (position " + std::to_string(e.position) + ")";
}

// Steps that each turn (type, schema version n) into a newer shape. apply() runs them until
// none matches, so v1 -> v2 -> v3 chains; each step must raise the version (or rename the type),
// which is checked, so a faulty step cannot loop.
class upcasters {
public:
    using step = std::function<encoded_event(encoded_event)>;

    upcasters& add(std::string type, int from_version, step fn) {
        steps_.insert_or_assign({std::move(type), from_version}, std::move(fn));
        return *this;
    }
    bool empty() const noexcept { return steps_.empty(); }

    encoded_event apply(encoded_event e) const {
        for (int guard = 0; guard < 1000; ++guard) {
            auto it = steps_.find({e.type, e.schema_version});
            if (it == steps_.end())
                return e;
            const std::string before_type = e.type;
            const int before_version = e.schema_version;
            e = it->second(std::move(e));
            if (e.type == before_type && e.schema_version <= before_version)
                throw std::logic_error("weft::es: upcaster for " + before_type + " v" +
                                       std::to_string(before_version) +
                                       " did not raise the schema version");
        }
        throw std::logic_error("weft::es: upcasters for " + e.type + " loop");
    }
    encoded_event apply(const recorded_event& r) const {
        return apply(encoded_event{r.type, r.schema_version, r.payload});
    }

private:
    std::map<std::pair<std::string, int>, step> steps_;
};

} // namespace weft::es

// weft::es::json_codec<std::variant<Events...>> — a ready codec that stores events as JSON
// (needs nlohmann-json: Debian's nlohmann-json3-dev, CMake target nlohmann_json::nlohmann_json).
//
//   struct deposited {
//       static constexpr std::string_view type_name = "deposited";  // the stored name
//       static constexpr int schema_version = 2;                     // optional, default 1
//       std::int64_t cents;
//       std::string currency;
//   };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(deposited, cents, currency)
//
//   weft::es::upcasters up;
//   up.add("deposited", 1, weft::es::json_upcast(2, [](nlohmann::json& j) { j["currency"] = "EUR";
//   })); weft::es::json_codec<std::variant<opened, deposited>> codec(std::move(up));
//
// decode() runs the upcasters first, then reads the event whose type_name matches; an unknown
// name, a schema version with no upcaster to the current one, or bad JSON is a decode_error.
#pragma once

#include "codec.hpp"

#include <nlohmann/json.hpp>

#include <concepts>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace weft::es {

template <class T>
concept named_event = requires {
    { T::type_name } -> std::convertible_to<std::string_view>;
};

template <class T>
constexpr int schema_version_of() noexcept {
    if constexpr (requires { T::schema_version; })
        return T::schema_version;
    else
        return 1;
}

// An upcaster step that edits the JSON payload and sets the schema version to `to_version`.
inline upcasters::step json_upcast(int to_version, std::function<void(nlohmann::json&)> edit) {
    return [to_version, edit = std::move(edit)](encoded_event e) {
        nlohmann::json j = nlohmann::json::parse(e.payload);
        edit(j);
        e.payload = j.dump();
        e.schema_version = to_version;
        return e;
    };
}

template <class Variant>
class json_codec;

template <class... Events>
class json_codec<std::variant<Events...>> {
    static_assert((named_event<Events> && ...), "weft::es::json_codec: every event type needs "
                                                "`static constexpr std::string_view type_name`");

public:
    using event = std::variant<Events...>;

    json_codec() = default;
    explicit json_codec(upcasters up) : upcasters_(std::move(up)) {}

    encoded_event encode(const event& e) const {
        return std::visit(
            [](const auto& x) {
                using T = std::decay_t<decltype(x)>;
                return encoded_event{std::string(T::type_name), schema_version_of<T>(),
                                     nlohmann::json(x).dump()};
            },
            e);
    }

    event decode(const recorded_event& r) const {
        const encoded_event e = upcasters_.apply(r);
        std::optional<event> out;
        (try_decode<Events>(r, e, out) || ...);
        if (!out)
            throw decode_error("weft::es: unknown " + describe(r) + ": no event type named " +
                               e.type);
        return std::move(*out);
    }

private:
    template <class T>
    static bool try_decode(const recorded_event& r, const encoded_event& e,
                           std::optional<event>& out) {
        if (e.type != T::type_name)
            return false;
        if (e.schema_version != schema_version_of<T>())
            throw decode_error("weft::es: cannot read " + describe(r) + ": this program reads v" +
                               std::to_string(schema_version_of<T>()) + " (an upcaster from v" +
                               std::to_string(e.schema_version) + " is missing)");
        try {
            out.emplace(std::in_place_type<T>, nlohmann::json::parse(e.payload).template get<T>());
        } catch (const nlohmann::json::exception& error) {
            throw decode_error("weft::es: cannot read " + describe(r) + ": " + error.what());
        }
        return true;
    }

    upcasters upcasters_;
};

} // namespace weft::es

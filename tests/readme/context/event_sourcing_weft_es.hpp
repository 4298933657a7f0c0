// README "Event sourcing": the bank's commands (plain structs), the scheduler, and a command id.
#pragma once

struct open_account {
    std::string owner;
};
struct deposit {
    std::int64_t cents;
};
struct withdraw {
    std::int64_t cents;
};
extern weft::scheduler sched;
extern std::string id;

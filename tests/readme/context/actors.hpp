// README "Actors": the example's messages and replies, and the scheduler it runs on.
#pragma once

struct deposit {
    std::int64_t cents;
};
struct withdraw {
    std::int64_t cents;
};
struct audit {};
struct outcome {
    bool ok;
};
struct report {
    std::int64_t balance;
};
extern weft::scheduler sched;

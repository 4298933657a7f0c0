// README "Cancellation and deadlines": the reply type, the log and the calls the examples make.
#pragma once

struct reply {};
void log_line(std::string_view line);
weft::task<void> fetch(weft::context ctx, std::string url);
weft::task<int> ask_primary(weft::context ctx);
weft::task<int> ask_replica(weft::context ctx);

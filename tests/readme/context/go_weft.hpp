// README "Go → weft": the table's T, its channel `ch` and a value `v` to send.
#pragma once

using T = int;
extern weft::channel<T> ch;
extern T v;

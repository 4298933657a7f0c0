// expect-error: weft::on_send: cannot send on a receiver<T>
// after() hands out a receiver: nobody may push into a timer's channel.
#include <weft/select.hpp>
#include <weft/time.hpp>

#include <chrono>

void f() {
    weft::select(weft::on_send(weft::after(std::chrono::seconds(5)), weft::time_point{}),
                 weft::otherwise());
}

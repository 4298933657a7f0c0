// expect: compiles
// The control for the other snippets: every direction select allows.
#include <weft/select.hpp>
#include <weft/time.hpp>

#include <chrono>

void f(weft::channel<int> both, weft::sender<int> out, weft::receiver<int> in) {
    weft::select(weft::on_recv(both), weft::on_recv(in), weft::on_send(both, 1),
                 weft::on_send(out, 2), weft::on_recv(weft::after(std::chrono::seconds(5))),
                 weft::otherwise());
}

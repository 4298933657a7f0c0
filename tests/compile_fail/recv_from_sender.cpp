// expect-error: weft::on_recv: cannot receive from a sender<T>
// Go rejects `case <-c:` on a send-only channel (chan<- int); so must weft.
#include <weft/select.hpp>

void f(weft::sender<int> out) {
    weft::select(weft::on_recv(out), weft::otherwise());
}

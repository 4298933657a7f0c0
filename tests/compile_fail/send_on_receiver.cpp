// expect-error: weft::on_send: cannot send on a receiver<T>
// Go rejects `case c <- v:` on a receive-only channel (<-chan int); so must weft.
#include <weft/select.hpp>

void f(weft::receiver<int> in) {
    weft::select(weft::on_send(in, 1), weft::otherwise());
}

#pragma once
[[dispatch::function]] void f(int* p);
[[dispatch::function]] void g(void (*cb)(int));
struct S { [[dispatch::function]] void m(); };
template <class T> [[dispatch::function]] T h(T t);
